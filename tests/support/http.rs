//! A plain HTTP/1.1 client for the tests and benchmarks that talk to the gateway's API over a
//! real socket (the gateway answers one request per connection), and the points the preview
//! tests and benchmark read.

use std::io::{Read, Write};
use std::net::SocketAddr;

use serde_json::Value;

/// One request on a fresh connection: the status, the `ETag` and the JSON body.
pub fn request(
    address: SocketAddr,
    method: &str,
    path: &str,
    token: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> (u16, Option<String>, Value) {
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(&body);
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let response = String::from_utf8_lossy(&response);
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let etag = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("etag")
            .then(|| value.trim().to_owned())
    });
    // A body may come chunked; the JSON object is between the first `{` and the last `}`.
    let json = match (body.find('{'), body.rfind('}')) {
        (Some(start), Some(end)) if start < end => {
            serde_json::from_str(&body[start..=end]).unwrap_or(Value::Null)
        }
        _ => Value::Null,
    };
    (status, etag, json)
}

/// Noise with standard deviation 1 around 100, the same for every run.
pub fn noise(i: u64) -> f64 {
    let mixed = i.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17) ^ 0x5851_F42D_4C95_7F2D;
    let unit = (mixed >> 11) as f64 / (1u64 << 53) as f64;
    100.0 + (unit - 0.5) * 2.0 * 3f64.sqrt()
}

/// JSON lines of `series` series of `tenant`'s `latency` metric (label `host` = `h<n>`), one
/// point a minute for `minutes` from `start_ms`, each with a +15 spike every 97 minutes
/// (offset per series) and a +8 rise for 10 minutes every 331.
pub fn points(tenant: &str, series: usize, minutes: u64, start_ms: i64) -> String {
    let mut out = String::new();
    for minute in 0..minutes {
        for s in 0..series as u64 {
            let i = minute + s * 7;
            let spike = minute > 60 && i % 97 == 0;
            let rise = minute > 60 && i % 331 < 10;
            let value = noise(minute * 1_000 + s)
                + if spike { 15.0 } else { 0.0 }
                + if rise { 8.0 } else { 0.0 };
            out.push_str(&format!(
                "{{\"tenant\":\"{tenant}\",\"name\":\"latency\",\"labels\":{{\"host\":\"h{s}\"}},\"timestamp\":{},\"value\":{value}}}\n",
                start_ms + minute as i64 * 60_000
            ));
        }
    }
    out
}

/// A built-in preset's document for the `latency` metric, with its alert policy's warning
/// threshold set to `warning`.
pub fn preset_document(preset: &str, warning: f64) -> Value {
    let mut document = serde_json::to_value(
        &aiops_models::detectors::presets()
            .into_iter()
            .find(|p| p.name == preset)
            .unwrap()
            .config,
    )
    .unwrap();
    document["match"] = serde_json::json!({"metric": "latency"});
    document["alert"]["warning"] = serde_json::json!(warning);
    document
}
