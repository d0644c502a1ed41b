//! One client connection after the upgrade: its messages, its subscriptions, its queue, its
//! keepalive, and how it ends.
//!
//! One task per connection selects over the client's frames, the connection's queue of event
//! frames, the keepalive timer, the token's expiry, the slow-consumer signal and shutdown. It
//! never blocks the hub: event frames reach it through a bounded queue.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Error as WsError;

use aiops_schemas::Channel;

use crate::auth::{CHANNELS, Claims};
use crate::broker::{Broker, BrokerError};
use crate::hub::{ClientHandle, SlowSignal};
use crate::protocol::{self, ClientMessage, CloseCode, EventHead, Filter, codes};
use crate::server::Context;

/// Event frames written per flush at most.
const WRITE_BATCH: usize = 64;

/// How a connection ends, when the gateway ends it.
type Closing = Option<CloseCode>;

/// Serves one upgraded connection until it ends.
pub async fn serve<B: Broker>(mut ws: WebSocket, claims: Claims, context: Arc<Context<B>>) {
    let limits = &context.config.limits;
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
            _ = client.slow.raised() => {
                context.metrics.slow_disconnects.inc();
                tracing::info!(tenant = %connection.claims.tenant, subject = ?connection.claims.sub, "aiops gateway: closing a slow consumer (4008)");
                break Some(CloseCode::SlowConsumer);
            }
            _ = shutdown.changed() => break Some(CloseCode::GoingAway),
            _ = &mut expiry => break Some(CloseCode::TokenExpired),
            frame = queue.recv() => {
                let Some(frame) = frame else { break None };
                // Whatever else is queued goes out in the same write: one flush per burst.
                let mut written = ws.feed(Message::Text(frame)).await.is_ok();
                let mut batch = 1;
                while written && batch < WRITE_BATCH {
                    let Ok(frame) = queue.try_recv() else { break };
                    written = ws.feed(Message::Text(frame)).await.is_ok();
                    batch += 1;
                }
                if !written || ws.flush().await.is_err() {
                    break None;
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
                        if ws.send(Message::text(reply)).await.is_err() {
                            break None;
                        }
                    }
                    Some(Ok(Message::Close(_))) | None => break None,
                    Some(Ok(_)) => {}
                    Some(Err(error)) => break closing_for(error),
                }
            }
            _ = keepalive.tick() => {
                if last_heard.elapsed() >= idle {
                    break Some(CloseCode::IdleTimeout);
                }
                if ws.send(Message::Ping(Default::default())).await.is_err() {
                    break None;
                }
            }
        }
    };
    if let Some(code) = closing {
        let frame = CloseFrame {
            code: code.code(),
            reason: code.reason().into(),
        };
        let closed = async {
            ws.send(Message::Close(Some(frame))).await?;
            ws.close().await
        };
        let _ = tokio::time::timeout(Duration::from_secs(1), closed).await;
    }
    connection.leave_all();
    context.metrics.connections.dec();
}

/// How to close after a read error: 1009 for a frame over the limit, 1002 for a protocol
/// violation, nothing (the connection is gone) otherwise.
fn closing_for(error: axum::Error) -> Closing {
    match error.into_inner().downcast::<WsError>().map(|e| *e) {
        Ok(WsError::Capacity(_)) => Some(CloseCode::MessageTooBig),
        Ok(WsError::Protocol(_)) => Some(CloseCode::ProtocolError),
        _ => None,
    }
}

/// The instant a token with expiry `exp` (seconds since the epoch) runs out.
fn deadline(exp: u64) -> Instant {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    Instant::now() + Duration::from_secs(exp.saturating_sub(now))
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
        if ws.send(Message::text(text)).await.is_err() {
            return Outcome {
                closing: Some(CloseCode::InternalError),
                refreshed: None,
            };
        }
        Outcome::default()
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
        for frame in frames {
            if outcome.closing.is_some() {
                return outcome;
            }
            if ws
                .send(Message::Text(Utf8Bytes::from(frame)))
                .await
                .is_err()
            {
                return Outcome {
                    closing: Some(CloseCode::InternalError),
                    refreshed: None,
                };
            }
        }
        if !self
            .context
            .hub
            .finish_resume(&full, self.client.id, &replayed)
        {
            metrics.slow_disconnects.inc();
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
