//! Where the command's messages go: plain lines on standard error (the default, for people at a
//! terminal), or one JSON object per line (`--log-format json`, for log collectors), with the
//! library crates' `tracing` events in the same stream either way.
//!
//! `AIOPS_LOG` filters by level and target, as `RUST_LOG` does elsewhere (default `info`;
//! e.g. `AIOPS_LOG=aiops_gateway=debug` shows refused tokens).

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// The message alone, as a line (what a person reads).
    Text,
    /// A JSON object per line: timestamp, level, target, message and the event's fields.
    Json,
}

static JSON: AtomicBool = AtomicBool::new(false);

/// Whether messages are JSON objects (then `note!` goes through `tracing` too).
pub fn json() -> bool {
    JSON.load(Ordering::Relaxed)
}

/// Installs the subscriber; called once, before anything logs.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_env("AIOPS_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = match format {
        LogFormat::Json => {
            JSON.store(true, Ordering::Relaxed);
            builder
                .json()
                .flatten_event(true)
                .with_current_span(false)
                .try_init()
        }
        LogFormat::Text => builder.event_format(MessageOnly).try_init(),
    };
    // Only fails if a subscriber is already installed, which leaves that one in charge.
    let _ = installed;
}

/// The text format: the message as it was written, nothing added, so lines read the same
/// whether they come from the command or from a library crate.
struct MessageOnly;

impl<S, N> FormatEvent<S, N> for MessageOnly
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _context: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut message = Message(String::new());
        event.record(&mut message);
        writeln!(writer, "{}", message.0)
    }
}

struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            use std::fmt::Write as _;
            let _ = write!(self.0, "{value:?}");
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        }
    }
}
