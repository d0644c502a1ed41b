//! The Influx parser on arbitrary bytes: no panic, the cached and fresh parses agree, accepted points
//! are valid.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| common::check(aiops_schemas::Format::Influx, data));
