//! One client connection after the upgrade: its messages, its subscriptions, its queue, its
//! keepalive, and how it ends.
//!
//! One task per connection selects over the client's frames, the connection's queue of event
//! frames, the keepalive timer, the token's expiry, the slow-consumer signal and shutdown. It
//! never blocks the hub: event frames reach it through a bounded queue.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Error as WsError;

use aiops_schemas::Channel;

use crate::auth::{CHANNELS, Claims};
use crate::broker::{Broker, BrokerError};
use crate::hub::{ClientHandle, SlowSignal};
use crate::metrics::Metrics;
use crate::protocol::{self, ClientMessage, CloseCode, EventHead, Filter, codes};
use crate::server::Context;

/// Event frames written per flush at most.
const WRITE_BATCH: usize = 64;

/// How a connection ends, when the gateway ends it.
type Closing = Option<CloseCode>;

/// The longest a token keeps a connection open, whatever its `exp` says (a year): the expiry
/// timer is an `Instant`, which a client-chosen `exp` must not overflow.
const MAX_TOKEN_HORIZON: Duration = Duration::from_secs(366 * 24 * 3600);

/// One of `max_connections` places, held by a connection from admission to its end and given
/// back when dropped: on a normal end, a failed upgrade, or a panic in the connection's task.
pub struct Slot {
    metrics: Arc<Metrics>,
}

impl Slot {
    /// Takes a place if fewer than `limit` are taken.
    pub fn take(metrics: &Arc<Metrics>, limit: u64) -> Option<Slot> {
        if metrics.connections.inc() >= limit {
            metrics.connections.dec();
            return None;
        }
        Some(Slot {
            metrics: metrics.clone(),
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.metrics.connections.dec();
    }
}

/// A write to the client that does not finish within `limit` is a stuck client; so is one whose
/// queue overflowed while the write waited (the hub has dropped it already: no need to wait on).
async fn bounded<T>(
    limit: Duration,
    slow: &SlowSignal,
    write: impl std::future::Future<Output = Result<T, axum::Error>>,
) -> Result<T, Stuck> {
    tokio::select! {
        biased;
        written = tokio::time::timeout(limit, write) => match written {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(_)) => Err(Stuck::Gone),
            Err(_) => Err(Stuck::TimedOut),
        },
        _ = slow.raised() => Err(Stuck::TimedOut),
    }
}

/// Why a write did not happen.
enum Stuck {
    /// The connection is gone.
    Gone,
    /// The client accepted nothing within the write timeout.
    TimedOut,
}

impl Stuck {
    fn closing(self) -> Closing {
        match self {
            Stuck::Gone => None,
            Stuck::TimedOut => Some(CloseCode::SlowConsumer),
        }
    }
}

/// Serves one upgraded connection until it ends.
pub async fn serve<B: Broker>(
    mut ws: WebSocket,
    claims: Claims,
    context: Arc<Context<B>>,
    slot: Slot,
) {
    // Given back when this task ends, however it ends.
    let _slot = slot;
    let limits = &context.config.limits;
    let write_limit = Duration::from_millis(limits.write_timeout_ms);
    let (frames, mut queue) = mpsc::channel(limits.client_queue);
    let client = ClientHandle {
        id: context.hub.next_client_id(),
        frames,
        slow: Arc::new(SlowSignal::default()),
    };
    let mut connection = Connection {
        claims,
        subscriptions: HashMap::new(),
        client: client.clone(),
        context: context.clone(),
        write_limit,
    };
    let mut shutdown = context.shutdown.clone();
    let expiry = tokio::time::sleep_until(deadline(connection.claims.exp));
    tokio::pin!(expiry);
    let period = Duration::from_secs(limits.ping_interval_s);
    let mut keepalive = tokio::time::interval_at(Instant::now() + period, period);
    let idle = Duration::from_secs(limits.idle_timeout_s);
    let mut last_heard = Instant::now();

    let closing: Closing = loop {
        tokio::select! {
            biased;
            _ = client.slow.raised() => break Some(CloseCode::SlowConsumer),
            _ = shutdown.changed() => break Some(CloseCode::GoingAway),
            _ = &mut expiry => break Some(CloseCode::TokenExpired),
            frame = queue.recv() => {
                let Some(frame) = frame else { break None };
                // Whatever else is queued goes out in the same write: one flush per burst.
                let burst = async {
                    ws.feed(Message::Text(frame)).await?;
                    let mut batch = 1;
                    while batch < WRITE_BATCH {
                        let Ok(frame) = queue.try_recv() else { break };
                        ws.feed(Message::Text(frame)).await?;
                        batch += 1;
                    }
                    ws.flush().await
                };
                if let Err(stuck) = bounded(write_limit, &client.slow, burst).await {
                    break stuck.closing();
                }
            }
            message = ws.next() => {
                last_heard = Instant::now();
                match message {
                    Some(Ok(Message::Text(text))) => {
                        let outcome = connection.handle(&text, &mut ws).await;
                        if let Some(exp) = outcome.refreshed {
                            expiry.as_mut().reset(deadline(exp));
                        }
                        if outcome.closing.is_some() {
                            break outcome.closing;
                        }
                    }
                    Some(Ok(Message::Binary(_))) => {
                        let reply = protocol::error(None, codes::BINARY_NOT_SUPPORTED, "send JSON text frames");
                        if let Err(stuck) = bounded(write_limit, &client.slow, ws.send(Message::text(reply))).await {
                            break stuck.closing();
                        }
                    }
                    Some(Ok(Message::Close(_))) => {
                        // The WebSocket layer has queued its answer (the client's code, or
                        // 1002 for a code no one may send): send it before going.
                        let _ = bounded(write_limit, &client.slow, ws.flush()).await;
                        break None;
                    }
                    None => break None,
                    Some(Ok(_)) => {}
                    Some(Err(error)) => break closing_for(error),
                }
            }
            _ = keepalive.tick() => {
                if last_heard.elapsed() >= idle {
                    break Some(CloseCode::IdleTimeout);
                }
                if let Err(stuck) = bounded(write_limit, &client.slow, ws.send(Message::Ping(Default::default()))).await {
                    break stuck.closing();
                }
            }
        }
    };
    if closing == Some(CloseCode::SlowConsumer) {
        context.metrics.slow_disconnects.inc();
        tracing::info!(tenant = %connection.claims.tenant, subject = ?connection.claims.sub, "aiops gateway: closing a slow consumer (4008)");
    }
    if let Some(code) = closing {
        let frame = CloseFrame {
            code: code.code(),
            reason: code.reason().into(),
        };
        let closed = async {
            ws.send(Message::Close(Some(frame))).await?;
            ws.close().await
        };
        // A slow consumer's close frame waits behind what it has not read yet: give it as long
        // as any other write, so a client that reads again within that time learns why.
        let patience = if code == CloseCode::SlowConsumer {
            write_limit
        } else {
            Duration::from_secs(1)
        };
        let _ = tokio::time::timeout(patience, closed).await;
    }
    // Dropping `connection` leaves its subscriptions, and `_slot` gives back its place.
}

/// How to close after a read error: 1009 for a frame over the limit, 1002 for a protocol
/// violation, nothing (the connection is gone) otherwise.
fn closing_for(error: axum::Error) -> Closing {
    match error.into_inner().downcast::<WsError>().map(|e| *e) {
        Ok(WsError::Capacity(_)) => Some(CloseCode::MessageTooBig),
        Ok(WsError::Protocol(_)) => Some(CloseCode::ProtocolError),
        Ok(WsError::Utf8(_)) => Some(CloseCode::InvalidPayload),
        _ => None,
    }
}

/// The instant a token with expiry `exp` (seconds since the epoch) runs out.
fn deadline(exp: u64) -> Instant {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let left = Duration::from_secs(exp.saturating_sub(now)).min(MAX_TOKEN_HORIZON);
    let start = Instant::now();
    start.checked_add(left).unwrap_or(start)
}

#[derive(Default)]
struct Outcome {
    closing: Closing,
    refreshed: Option<u64>,
}

struct Connection<B: Broker> {
    claims: Claims,
    /// Short channel name → broker channel name.
    subscriptions: HashMap<String, String>,
    client: ClientHandle,
    context: Arc<Context<B>>,
    /// How long a write to the client may take.
    write_limit: Duration,
}

impl<B: Broker> Drop for Connection<B> {
    /// However the connection's task ends (a panic included), its subscriptions end with it.
    fn drop(&mut self) {
        self.leave_all();
    }
}

impl<B: Broker> Connection<B> {
    async fn handle(&mut self, text: &str, ws: &mut WebSocket) -> Outcome {
        let message = match protocol::decode_client(text) {
            Ok(message) => message,
            Err(error) => {
                let reply = protocol::error(None, codes::BAD_REQUEST, &error.to_string());
                return self.reply(ws, reply).await;
            }
        };
        match message {
            ClientMessage::Ping { id } => self.reply(ws, protocol::pong(id)).await,
            ClientMessage::Subscribe {
                id,
                channel,
                filter,
                since,
            } => self.subscribe(ws, id, channel, filter, since).await,
            ClientMessage::Unsubscribe { id, channel } => {
                let reply = match self.subscriptions.remove(&channel) {
                    Some(full) => {
                        self.leave(&full);
                        protocol::unsubscribed(id, &channel)
                    }
                    None => protocol::error(
                        id,
                        codes::NOT_SUBSCRIBED,
                        &format!("{channel} is not subscribed"),
                    ),
                };
                self.reply(ws, reply).await
            }
            ClientMessage::Refresh { id, token } => match self.context.auth.verify(&token) {
                Ok(claims) if claims.tenant == self.claims.tenant => {
                    let exp = claims.exp;
                    self.claims = claims;
                    // Authorization follows the current token: what it no longer grants ends.
                    let revoked: Vec<String> = self
                        .subscriptions
                        .keys()
                        .filter(|channel| !self.claims.allows(channel))
                        .cloned()
                        .collect();
                    for channel in revoked {
                        if let Some(full) = self.subscriptions.remove(&channel) {
                            self.leave(&full);
                        }
                        let outcome = self.reply(ws, protocol::unsubscribed(None, &channel)).await;
                        if outcome.closing.is_some() {
                            return outcome;
                        }
                    }
                    let mut outcome = self.reply(ws, protocol::refreshed(id, exp)).await;
                    outcome.refreshed = Some(exp);
                    outcome
                }
                Ok(_) => {
                    let reply = protocol::error(
                        id,
                        codes::INVALID_TOKEN,
                        "the new token is for another tenant",
                    );
                    self.reply(ws, reply).await
                }
                Err(error) => {
                    self.reply(
                        ws,
                        protocol::error(id, codes::INVALID_TOKEN, &error.to_string()),
                    )
                    .await
                }
            },
        }
    }

    async fn reply(&self, ws: &mut WebSocket, text: String) -> Outcome {
        match bounded(
            self.write_limit,
            &self.client.slow,
            ws.send(Message::text(text)),
        )
        .await
        {
            Ok(()) => Outcome::default(),
            Err(Stuck::TimedOut) => Outcome {
                closing: Some(CloseCode::SlowConsumer),
                refreshed: None,
            },
            Err(Stuck::Gone) => Outcome {
                closing: Some(CloseCode::InternalError),
                refreshed: None,
            },
        }
    }

    async fn subscribe(
        &mut self,
        ws: &mut WebSocket,
        id: Option<u64>,
        channel: String,
        filter: Filter,
        since: Option<String>,
    ) -> Outcome {
        let Some(kind) = Channel::parse(&channel) else {
            let message = format!("no channel {channel:?}; channels: {}", CHANNELS.join(", "));
            return self
                .reply(ws, protocol::error(id, codes::UNKNOWN_CHANNEL, &message))
                .await;
        };
        let refusal = if !self.claims.allows(&channel) {
            Some((
                codes::FORBIDDEN,
                format!("the token does not grant {channel}"),
            ))
        } else if self.subscriptions.contains_key(&channel) {
            Some((
                codes::ALREADY_SUBSCRIBED,
                format!("{channel} is already subscribed"),
            ))
        } else if self.subscriptions.len() >= self.context.config.limits.max_subscriptions {
            Some((
                codes::TOO_MANY_SUBSCRIPTIONS,
                "unsubscribe from another channel first".to_owned(),
            ))
        } else {
            None
        };
        if let Some((code, message)) = refusal {
            return self.reply(ws, protocol::error(id, code, &message)).await;
        }
        // The tenant comes from the verified token, never from the message.
        let full = kind.key(&self.claims.tenant);
        let resuming = since.is_some();
        let live = {
            let _order = self
                .context
                .subscription_order
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            self.context
                .hub
                .subscribe(&full, self.client.clone(), filter.clone(), resuming);
            self.context.broker.subscribe(&full)
        };
        self.subscriptions.insert(channel.clone(), full.clone());
        if let Err(error) = live.await {
            self.subscriptions.remove(&channel);
            self.leave(&full);
            return self
                .reply(
                    ws,
                    protocol::error(id, codes::HISTORY_UNAVAILABLE, &error.to_string()),
                )
                .await;
        }
        let Some(since) = since else {
            return self.reply(ws, protocol::subscribed(id, &channel, 0)).await;
        };
        let mut replayed: HashSet<String> = HashSet::new();
        let mut frames = Vec::new();
        let notice = match self.context.broker.history_after(&full, &since).await {
            Ok(history) if history.found => {
                for (event_id, payload) in history.entries {
                    let head: EventHead = protocol::decode_event_head(&payload).unwrap_or_default();
                    if replayed.insert(event_id) && filter.matches(&head) {
                        frames.push(protocol::event_frame(&channel, &payload));
                    }
                }
                None
            }
            Ok(_) => Some(protocol::gap(&channel, &since)),
            Err(BrokerError::NoHistory(_)) => Some(protocol::error(
                id,
                codes::HISTORY_UNAVAILABLE,
                &format!("{channel} keeps no history; live events only"),
            )),
            Err(error) => Some(protocol::error(
                id,
                codes::HISTORY_UNAVAILABLE,
                &error.to_string(),
            )),
        };
        let metrics = &self.context.metrics;
        metrics.replayed.inc_by(frames.len() as u64);
        let mut outcome = self
            .reply(ws, protocol::subscribed(id, &channel, frames.len()))
            .await;
        if let Some(notice) = notice {
            outcome = self.reply(ws, notice).await;
        }
        if outcome.closing.is_some() {
            return outcome;
        }
        for frame in frames {
            outcome = self.reply(ws, frame).await;
            if outcome.closing.is_some() {
                return outcome;
            }
        }
        if !self
            .context
            .hub
            .finish_resume(&full, self.client.id, &replayed)
        {
            // Counted where the connection closes.
            return Outcome {
                closing: Some(CloseCode::SlowConsumer),
                refreshed: None,
            };
        }
        outcome
    }

    fn leave(&self, full: &str) {
        let _order = self
            .context
            .subscription_order
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if self.context.hub.unsubscribe(full, self.client.id) {
            self.context.broker.unsubscribe(full);
        }
    }

    fn leave_all(&mut self) {
        let subscriptions = std::mem::take(&mut self.subscriptions);
        for full in subscriptions.values() {
            self.leave(full);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_connection_task_gives_its_slot_back() {
        let metrics = Arc::new(Metrics::default());
        let first = Slot::take(&metrics, 2).unwrap();
        let _second = Slot::take(&metrics, 2).unwrap();
        assert!(Slot::take(&metrics, 2).is_none(), "the limit holds");
        let task = tokio::spawn(async move {
            let _slot = first;
            panic!("a bug in a connection task");
        });
        assert!(task.await.unwrap_err().is_panic());
        assert_eq!(metrics.connections.get(), 1);
        assert!(
            Slot::take(&metrics, 2).is_some(),
            "the panicked task's slot is free"
        );
    }

    #[test]
    fn an_exp_past_any_horizon_is_a_deadline_a_year_away_at_most() {
        let now = Instant::now();
        for exp in [u64::MAX, 1 << 63, u64::MAX / 2] {
            let at = deadline(exp);
            assert!(
                at > now + MAX_TOKEN_HORIZON - Duration::from_secs(5),
                "{exp}"
            );
            assert!(at <= Instant::now() + MAX_TOKEN_HORIZON, "{exp}");
        }
        assert!(
            deadline(0) <= Instant::now(),
            "an expired token's deadline has passed"
        );
    }
}
