//! The WebSocket protocol: JSON text frames, documented in `docs/protocol.md`. Message
//! types, error codes and close codes here are stable; clients may rely on them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use aiops_schemas::Severity;
use aiops_schemas::glob::glob_match;

/// What a client sends.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    /// Starts receiving a channel's events.
    Subscribe {
        /// Echoed in the reply.
        #[serde(default)]
        id: Option<u64>,
        /// `anomalies`, `drift` or `config`.
        channel: String,
        /// Which events to receive; everything when absent.
        #[serde(default)]
        filter: Filter,
        /// The last event id seen: events after it are replayed from history first.
        #[serde(default)]
        since: Option<String>,
    },
    /// Stops receiving a channel's events.
    Unsubscribe {
        /// Echoed in the reply.
        #[serde(default)]
        id: Option<u64>,
        /// The channel.
        channel: String,
    },
    /// Asks for a `pong`.
    Ping {
        /// Echoed in the reply.
        #[serde(default)]
        id: Option<u64>,
    },
    /// Replaces the connection's token before it expires (same tenant only).
    Refresh {
        /// Echoed in the reply.
        #[serde(default)]
        id: Option<u64>,
        /// The new token.
        token: String,
    },
}

/// Reads a client's text frame: the one place the gateway decodes what clients send (fuzzed by
/// `fuzz/fuzz_targets/gateway_frame.rs`).
pub fn decode_client(text: &str) -> Result<ClientMessage, serde_json::Error> {
    serde_json::from_str(text)
}

/// Reads the fields of a broker message that routing looks at.
pub fn decode_event_head(text: &str) -> Result<EventHead, serde_json::Error> {
    serde_json::from_str(text)
}

/// Which events of a channel a subscription receives.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Filter {
    /// Glob on the metric name.
    pub metric: Option<String>,
    /// Globs on label values; the label must be present.
    pub labels: BTreeMap<String, String>,
    /// Only events at least this severe.
    pub min_severity: Option<Severity>,
}

/// The fields of an event a filter looks at, read once per event.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct EventHead {
    /// The event id (for deduplication and resume).
    #[serde(default)]
    pub id: String,
    /// The series.
    #[serde(default)]
    pub series: Option<SeriesHead>,
    /// The severity (anomaly events only).
    #[serde(default)]
    pub severity: Option<Severity>,
}

/// The series part of an [`EventHead`].
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SeriesHead {
    /// The metric name.
    #[serde(default)]
    pub name: String,
    /// The labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

impl Filter {
    /// Whether an event passes the filter.
    pub fn matches(&self, event: &EventHead) -> bool {
        if let Some(min) = self.min_severity
            && event.severity.is_none_or(|s| s < min)
        {
            return false;
        }
        if self.metric.is_none() && self.labels.is_empty() {
            return true;
        }
        let Some(series) = &event.series else {
            return false;
        };
        self.metric
            .as_deref()
            .is_none_or(|g| glob_match(g, &series.name))
            && self
                .labels
                .iter()
                .all(|(key, g)| series.labels.get(key).is_some_and(|v| glob_match(g, v)))
    }
}

/// Stable error codes of `error` messages.
pub mod codes {
    /// The frame is not a valid message.
    pub const BAD_REQUEST: &str = "bad_request";
    /// No such channel (`anomalies` and `drift` exist).
    pub const UNKNOWN_CHANNEL: &str = "unknown_channel";
    /// The token does not grant the channel.
    pub const FORBIDDEN: &str = "forbidden";
    /// The connection has as many subscriptions as allowed.
    pub const TOO_MANY_SUBSCRIPTIONS: &str = "too_many_subscriptions";
    /// The channel is already subscribed on this connection.
    pub const ALREADY_SUBSCRIBED: &str = "already_subscribed";
    /// The channel is not subscribed on this connection.
    pub const NOT_SUBSCRIBED: &str = "not_subscribed";
    /// A refreshed token is invalid or for another tenant.
    pub const INVALID_TOKEN: &str = "invalid_token";
    /// History could not be read; the subscription is live only.
    pub const HISTORY_UNAVAILABLE: &str = "history_unavailable";
    /// Binary frames are not part of the protocol.
    pub const BINARY_NOT_SUPPORTED: &str = "binary_not_supported";
}

/// Every WebSocket close code the gateway sends, standard (RFC 6455) and its own (4000–4999).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseCode {
    /// 1001: the gateway is shutting down; reconnect (to another instance).
    GoingAway,
    /// 1002: the client broke the WebSocket protocol (an invalid close code among others).
    ProtocolError,
    /// 1007: a text frame was not valid UTF-8.
    InvalidPayload,
    /// 1009: a frame or message over the size limit.
    MessageTooBig,
    /// 1011: the gateway could not go on with the connection (a write failed).
    InternalError,
    /// 4001: the token expired and no refreshed token came.
    TokenExpired,
    /// 4008: the client fell too far behind the events; it should reconnect with `since`.
    SlowConsumer,
    /// 4010: the client was silent longer than the idle timeout.
    IdleTimeout,
}

impl CloseCode {
    /// The number on the wire.
    pub const fn code(self) -> u16 {
        match self {
            CloseCode::GoingAway => 1001,
            CloseCode::ProtocolError => 1002,
            CloseCode::InvalidPayload => 1007,
            CloseCode::MessageTooBig => 1009,
            CloseCode::InternalError => 1011,
            CloseCode::TokenExpired => 4001,
            CloseCode::SlowConsumer => 4008,
            CloseCode::IdleTimeout => 4010,
        }
    }

    /// The reason sent with the code (short, for people reading logs and close events).
    pub const fn reason(self) -> &'static str {
        match self {
            CloseCode::GoingAway => "gateway shutting down",
            CloseCode::ProtocolError => "protocol error",
            CloseCode::InvalidPayload => "invalid UTF-8",
            CloseCode::MessageTooBig => "frame too large",
            CloseCode::InternalError => "cannot write",
            CloseCode::TokenExpired => "token expired",
            CloseCode::SlowConsumer => "slow consumer: reconnect with since",
            CloseCode::IdleTimeout => "idle timeout",
        }
    }
}

/// What the gateway sends, besides event frames (those are written by [`event_frame`] around
/// the event's JSON as the broker delivered it, without decoding it).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ServerMessage {
    /// The reply to `subscribe`: live from now on, after `replayed` events from history.
    Subscribed {
        /// The request's id.
        id: Option<u64>,
        /// The channel's short name.
        channel: String,
        /// How many events were replayed from history before this reply.
        replayed: usize,
    },
    /// The reply to `unsubscribe`.
    Unsubscribed {
        /// The request's id.
        id: Option<u64>,
        /// The channel's short name.
        channel: String,
    },
    /// The reply to `ping`.
    Pong {
        /// The request's id.
        id: Option<u64>,
    },
    /// The reply to `refresh`: the new token is in force until `exp`.
    Refreshed {
        /// The request's id.
        id: Option<u64>,
        /// The new token's expiry, in seconds since the Unix epoch.
        exp: u64,
    },
    /// A refused or failed request, with a stable code from [`codes`].
    Error {
        /// The request's id, when it had one.
        id: Option<u64>,
        /// One of [`codes`].
        code: String,
        /// What went wrong and what to do, for people.
        message: String,
    },
    /// History does not reach back to a resuming client's `since`: events may have been
    /// missed, and only live events follow.
    Gap {
        /// The channel's short name.
        channel: String,
        /// The event id the client asked to resume after.
        since: String,
        /// The same, for people.
        message: String,
    },
}

impl ServerMessage {
    /// The message as a text frame.
    pub fn encode(&self) -> String {
        // A tree of strings and numbers always serializes.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The reply to `subscribe`.
pub fn subscribed(id: Option<u64>, channel: &str, replayed: usize) -> String {
    ServerMessage::Subscribed {
        id,
        channel: channel.to_owned(),
        replayed,
    }
    .encode()
}

/// The reply to `unsubscribe`.
pub fn unsubscribed(id: Option<u64>, channel: &str) -> String {
    ServerMessage::Unsubscribed {
        id,
        channel: channel.to_owned(),
    }
    .encode()
}

/// The reply to `ping`.
pub fn pong(id: Option<u64>) -> String {
    ServerMessage::Pong { id }.encode()
}

/// The reply to `refresh`.
pub fn refreshed(id: Option<u64>, exp: u64) -> String {
    ServerMessage::Refreshed { id, exp }.encode()
}

/// An error with a stable code.
pub fn error(id: Option<u64>, code: &str, message: &str) -> String {
    ServerMessage::Error {
        id,
        code: code.to_owned(),
        message: message.to_owned(),
    }
    .encode()
}

/// Tells a resuming client that history does not reach back to its `since`.
pub fn gap(channel: &str, since: &str) -> String {
    ServerMessage::Gap {
        channel: channel.to_owned(),
        since: since.to_owned(),
        message:
            "history no longer reaches back to this event; events between it and now may be missing"
                .to_owned(),
    }
    .encode()
}

/// An event frame, built once per event and channel and shared by every subscriber:
/// `{"type":"event","channel":...,"event":<the event's JSON, unchanged>}`.
pub fn event_frame(channel: &str, payload: &str) -> String {
    let mut frame = String::with_capacity(payload.len() + channel.len() + 40);
    frame.push_str(r#"{"type":"event","channel":"#);
    frame.push_str(&serde_json::Value::from(channel).to_string());
    frame.push_str(r#","event":"#);
    frame.push_str(payload);
    frame.push('}');
    frame
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn server_messages_carry_their_type_and_read_back() {
        let cases = [
            (subscribed(Some(1), "anomalies", 3), "subscribed"),
            (unsubscribed(None, "drift"), "unsubscribed"),
            (pong(Some(9)), "pong"),
            (refreshed(Some(2), 1_900_000_000), "refreshed"),
            (error(None, codes::FORBIDDEN, "no \"drift\""), "error"),
            (gap("anomalies", "abc"), "gap"),
        ];
        for (frame, kind) in cases {
            let value: serde_json::Value = serde_json::from_str(&frame).unwrap();
            assert_eq!(value["type"], kind, "{frame}");
            let message: ServerMessage = serde_json::from_str(&frame).unwrap();
            assert_eq!(message.encode(), frame);
        }
        let value: serde_json::Value =
            serde_json::from_str(&subscribed(None, "anomalies", 0)).unwrap();
        assert_eq!(value["id"], serde_json::Value::Null, "id is always present");
    }

    #[test]
    fn close_codes_are_the_documented_numbers() {
        assert_eq!(CloseCode::GoingAway.code(), 1001);
        assert_eq!(CloseCode::TokenExpired.code(), 4001);
        assert_eq!(CloseCode::SlowConsumer.code(), 4008);
        assert_eq!(CloseCode::IdleTimeout.code(), 4010);
        let docs = include_str!("../../docs/protocol.md");
        for code in [
            CloseCode::GoingAway,
            CloseCode::ProtocolError,
            CloseCode::InvalidPayload,
            CloseCode::MessageTooBig,
            CloseCode::TokenExpired,
            CloseCode::SlowConsumer,
            CloseCode::IdleTimeout,
        ] {
            assert!(
                docs.contains(&code.code().to_string()),
                "{code:?} is not documented"
            );
        }
    }

    fn head(name: &str, labels: &[(&str, &str)], severity: Severity) -> EventHead {
        EventHead {
            id: "x".into(),
            series: Some(SeriesHead {
                name: name.into(),
                labels: labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            }),
            severity: Some(severity),
        }
    }

    #[test]
    fn messages_parse_as_documented() {
        let m: ClientMessage = serde_json::from_str(
            r#"{"type":"subscribe","id":7,"channel":"anomalies","filter":{"metric":"cpu*","min_severity":"critical"},"since":"abc"}"#,
        )
        .unwrap();
        assert!(
            matches!(m, ClientMessage::Subscribe { id: Some(7), ref since, .. } if since.as_deref() == Some("abc"))
        );
        assert!(serde_json::from_str::<ClientMessage>(r#"{"type":"ping"}"#).is_ok());
        assert!(serde_json::from_str::<ClientMessage>(r#"{"type":"subscribe"}"#).is_err());
        assert!(
            serde_json::from_str::<ClientMessage>(
                r#"{"type":"subscribe","channel":"a","tenant":"other"}"#
            )
            .is_err()
        );
    }

    #[test]
    fn filters_match_metric_labels_and_severity() {
        let event = head("cpu_usage", &[("host", "web-1")], Severity::Warning);
        assert!(Filter::default().matches(&event));
        let by_metric = Filter {
            metric: Some("cpu*".into()),
            ..Filter::default()
        };
        assert!(by_metric.matches(&event));
        let by_label = Filter {
            labels: [("host".to_owned(), "db-*".to_owned())].into(),
            ..Filter::default()
        };
        assert!(!by_label.matches(&event));
        let critical = Filter {
            min_severity: Some(Severity::Critical),
            ..Filter::default()
        };
        assert!(!critical.matches(&event));
        assert!(critical.matches(&head("cpu", &[], Severity::Critical)));
    }

    #[test]
    fn event_frames_embed_the_payload_unchanged() {
        let frame = event_frame("anomalies", r#"{"id":"a","value":1.5}"#);
        let parsed: serde_json::Value = serde_json::from_str(&frame).unwrap();
        assert_eq!(parsed["event"]["value"], 1.5);
        assert_eq!(parsed["channel"], "anomalies");
    }

    proptest! {
        #[test]
        fn no_frame_makes_the_decoder_panic(text in "\\PC{0,200}") {
            let _ = serde_json::from_str::<ClientMessage>(&text);
        }

        #[test]
        fn no_near_valid_frame_makes_the_decoder_panic(
            text in "\\{\"type\":\"(subscribe|unsubscribe|ping|refresh)\"(,\"(id|channel|since|token|filter)\":(\"[a-z*]{0,5}\"|[0-9]{1,20}|\\{\"(metric|labels|min_severity)\":(\"[a-z]{0,8}\"|\\{\\}|null)\\}|null))*\\}"
        ) {
            let _ = serde_json::from_str::<ClientMessage>(&text);
        }
    }
}
