//! The hub: which local clients subscribe to which channel, and the fan-out of each event to
//! them. Brokers feed it; client connections register with it.
//!
//! Each event is read once (its id, series and severity, for deduplication and filters) and
//! encoded once into a frame whose bytes every subscriber shares. A subscriber's queue is
//! bounded: when it is full the client is marked slow and told to close (code 4008); the hub
//! never waits for a client. A subscriber that is resuming gets live frames buffered until its
//! history has been sent, so the switch from history to live has no gap and no duplicate.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::ws::Utf8Bytes;
use tokio::sync::{Notify, mpsc};

use crate::metrics::Metrics;
use crate::protocol::{Filter, event_frame};

/// A connection's id.
pub type ClientId = u64;

/// Tells a connection's task to close because it fell behind.
#[derive(Debug, Default)]
pub struct SlowSignal {
    slow: AtomicBool,
    notify: Notify,
}

impl SlowSignal {
    /// Marks the client slow and wakes its task.
    pub fn raise(&self) {
        if !self.slow.swap(true, Ordering::AcqRel) {
            self.notify.notify_one();
        }
    }

    /// Waits until the client is marked slow.
    pub async fn raised(&self) {
        while !self.slow.load(Ordering::Acquire) {
            self.notify.notified().await;
        }
    }
}

/// The hub's handle on one connection.
#[derive(Debug, Clone)]
pub struct ClientHandle {
    /// The connection's id.
    pub id: ClientId,
    /// Its bounded queue of frames.
    pub frames: mpsc::Sender<Utf8Bytes>,
    /// Raised when the queue overflows.
    pub slow: Arc<SlowSignal>,
}

struct Subscriber {
    client: ClientHandle,
    filter: Filter,
    /// `Some` while the client replays history: live frames wait here (with their event ids).
    buffered: Option<Vec<(String, Utf8Bytes)>>,
    /// After a resume: ids the client got from history whose live copy has not arrived yet.
    /// An event is written to the history stream before it is published, so its live copy can
    /// arrive after the resume ended; it is dropped here instead of being sent twice.
    replayed: Option<LateCopies>,
}

/// Replayed ids still expected live, with a budget of live events after which they are
/// forgotten (a copy lost by Redis must not keep the set alive for ever).
struct LateCopies {
    ids: HashSet<String>,
    budget: u32,
}

/// Live events after a resume during which late copies of replayed events are dropped.
const LATE_COPY_BUDGET: u32 = 10_000;

/// The ids most recently seen on a channel, to drop events re-emitted after a pipeline crash.
struct RecentIds {
    order: VecDeque<String>,
    seen: HashSet<String>,
    capacity: usize,
}

impl RecentIds {
    fn new(capacity: usize) -> RecentIds {
        RecentIds {
            order: VecDeque::new(),
            seen: HashSet::new(),
            capacity: capacity.max(1),
        }
    }

    /// Records `id`; false if it was seen recently.
    fn insert(&mut self, id: &str) -> bool {
        if self.seen.contains(id) {
            return false;
        }
        if self.order.len() >= self.capacity
            && let Some(old) = self.order.pop_front()
        {
            self.seen.remove(&old);
        }
        self.order.push_back(id.to_owned());
        self.seen.insert(id.to_owned());
        true
    }
}

struct Channel {
    /// `anomalies`, `drift` or `config`: what clients call it.
    short: Arc<str>,
    subscribers: HashMap<ClientId, Subscriber>,
    recent: RecentIds,
    last_id: Option<String>,
}

/// See the module docs.
pub struct Hub {
    channels: Mutex<HashMap<String, Channel>>,
    dedupe_window: usize,
    buffer_limit: usize,
    next_client: AtomicU64,
    metrics: Arc<Metrics>,
}

/// The name clients use for a broker channel (`anomalies` for `aiops:{acme}:anomalies`); a
/// name the keys module does not know is used as it is.
pub fn short_name(channel: &str) -> &str {
    aiops_schemas::ChannelKey::parse(channel).map_or(channel, |key| key.channel.name())
}

impl Hub {
    /// A hub remembering `dedupe_window` ids per channel and buffering at most `buffer_limit`
    /// live frames for a resuming client.
    pub fn new(dedupe_window: usize, buffer_limit: usize, metrics: Arc<Metrics>) -> Hub {
        Hub {
            channels: Mutex::new(HashMap::new()),
            dedupe_window,
            buffer_limit,
            next_client: AtomicU64::new(1),
            metrics,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Channel>> {
        self.channels.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A fresh connection id.
    pub fn next_client_id(&self) -> ClientId {
        self.next_client.fetch_add(1, Ordering::Relaxed)
    }

    /// Delivers one event published on `channel` (a broker channel name) to its subscribers.
    pub fn publish(&self, channel: &str, payload: &[u8]) {
        let Ok(text) = std::str::from_utf8(payload) else {
            self.metrics.events_invalid.inc();
            return;
        };
        let Ok(head) = crate::protocol::decode_event_head(text) else {
            self.metrics.events_invalid.inc();
            return;
        };
        let mut channels = self.lock();
        let Some(state) = channels.get_mut(channel) else {
            return;
        };
        if !head.id.is_empty() {
            if !state.recent.insert(&head.id) {
                self.metrics.events_duplicate.inc();
                return;
            }
            state.last_id = Some(head.id.clone());
        }
        self.metrics.events_in.inc();
        let frame = Utf8Bytes::from(event_frame(&state.short, text));
        let buffer_limit = self.buffer_limit;
        let mut delivered = 0;
        state.subscribers.retain(|_, subscriber| {
            if !subscriber.filter.matches(&head) {
                return true;
            }
            if let Some(buffer) = &mut subscriber.buffered {
                if buffer.len() >= buffer_limit {
                    subscriber.client.slow.raise();
                    return false;
                }
                buffer.push((head.id.clone(), frame.clone()));
                return true;
            }
            if let Some(late) = &mut subscriber.replayed {
                let already_sent = late.ids.remove(&head.id);
                late.budget = late.budget.saturating_sub(1);
                if late.ids.is_empty() || late.budget == 0 {
                    subscriber.replayed = None;
                }
                if already_sent {
                    return true;
                }
            }
            match subscriber.client.frames.try_send(frame.clone()) {
                Ok(()) => {
                    delivered += 1;
                    true
                }
                Err(mpsc::error::TrySendError::Full(_)) => {
                    subscriber.client.slow.raise();
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            }
        });
        self.metrics.frames_out.inc_by(delivered);
    }

    /// Registers a subscription; `resuming` buffers live frames until [`Hub::finish_resume`].
    /// Returns true when this is the channel's first local subscriber (the broker must then
    /// subscribe to it).
    pub fn subscribe(
        &self,
        channel: &str,
        client: ClientHandle,
        filter: Filter,
        resuming: bool,
    ) -> bool {
        let mut channels = self.lock();
        let first = !channels.contains_key(channel);
        let state = channels
            .entry(channel.to_owned())
            .or_insert_with(|| Channel {
                short: short_name(channel).into(),
                subscribers: HashMap::new(),
                recent: RecentIds::new(self.dedupe_window),
                last_id: None,
            });
        state.subscribers.insert(
            client.id,
            Subscriber {
                client,
                filter,
                buffered: resuming.then(Vec::new),
                replayed: None,
            },
        );
        first
    }

    /// Ends a resume: queues the live frames buffered meanwhile, minus those whose event the
    /// client already got from history. False if the client fell behind meanwhile.
    pub fn finish_resume(
        &self,
        channel: &str,
        client: ClientId,
        replayed: &HashSet<String>,
    ) -> bool {
        let mut channels = self.lock();
        let Some(subscriber) = channels
            .get_mut(channel)
            .and_then(|c| c.subscribers.get_mut(&client))
        else {
            return false;
        };
        let mut late = replayed.clone();
        for (id, frame) in subscriber.buffered.take().unwrap_or_default() {
            if late.remove(&id) {
                continue;
            }
            if subscriber.client.frames.try_send(frame).is_err() {
                subscriber.client.slow.raise();
                return false;
            }
        }
        subscriber.replayed = (!late.is_empty()).then_some(LateCopies {
            ids: late,
            budget: LATE_COPY_BUDGET,
        });
        true
    }

    /// Removes a subscription; true when it was the channel's last local subscriber (the broker
    /// may then unsubscribe).
    pub fn unsubscribe(&self, channel: &str, client: ClientId) -> bool {
        let mut channels = self.lock();
        let Some(state) = channels.get_mut(channel) else {
            return false;
        };
        state.subscribers.remove(&client);
        if state.subscribers.is_empty() {
            channels.remove(channel);
            return true;
        }
        false
    }

    /// Every channel with local subscribers.
    pub fn channels(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// The id of the last event delivered on a channel, to catch up after a broker outage.
    pub fn last_id(&self, channel: &str) -> Option<String> {
        self.lock().get(channel).and_then(|c| c.last_id.clone())
    }

    /// Subscriptions open now.
    pub fn subscriptions(&self) -> usize {
        self.lock().values().map(|c| c.subscribers.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aiops_schemas::anomalies_channel;

    fn client(hub: &Hub, capacity: usize) -> (ClientHandle, mpsc::Receiver<Utf8Bytes>) {
        let (frames, receiver) = mpsc::channel(capacity);
        let handle = ClientHandle {
            id: hub.next_client_id(),
            frames,
            slow: Arc::new(SlowSignal::default()),
        };
        (handle, receiver)
    }

    fn event(id: &str, name: &str) -> Vec<u8> {
        format!(
            r#"{{"id":"{id}","series":{{"name":"{name}","labels":{{}}}},"severity":"warning"}}"#
        )
        .into_bytes()
    }

    fn hub() -> Hub {
        Hub::new(16, 4, Arc::new(Metrics::default()))
    }

    #[test]
    fn frames_are_shared_filtered_and_deduplicated() {
        let hub = hub();
        let (a, mut a_rx) = client(&hub, 8);
        let (b, mut b_rx) = client(&hub, 8);
        assert!(hub.subscribe(&anomalies_channel("t"), a, Filter::default(), false));
        let only_mem = Filter {
            metric: Some("mem*".into()),
            ..Filter::default()
        };
        assert!(!hub.subscribe(&anomalies_channel("t"), b, only_mem, false));
        hub.publish(&anomalies_channel("t"), &event("1", "cpu"));
        hub.publish(&anomalies_channel("t"), &event("2", "mem"));
        hub.publish(&anomalies_channel("t"), &event("2", "mem"));
        hub.publish(&anomalies_channel("other"), &event("3", "mem"));
        let first = a_rx.try_recv().unwrap();
        assert!(first.as_str().contains(r#""channel":"anomalies""#));
        let second = a_rx.try_recv().unwrap();
        assert!(a_rx.try_recv().is_err(), "the duplicate id is dropped");
        let b_frame = b_rx.try_recv().unwrap();
        assert_eq!(b_frame, second);
        assert_eq!(
            b_frame.as_bytes().as_ptr(),
            second.as_bytes().as_ptr(),
            "one encoding, shared bytes"
        );
        assert!(b_rx.try_recv().is_err());
        assert_eq!(hub.last_id(&anomalies_channel("t")).as_deref(), Some("2"));
    }

    #[test]
    fn a_full_queue_marks_the_client_slow_and_drops_it() {
        let hub = hub();
        let (slow, _slow_rx) = client(&hub, 1);
        let (fast, mut fast_rx) = client(&hub, 8);
        let signal = slow.slow.clone();
        hub.subscribe("c", slow, Filter::default(), false);
        hub.subscribe("c", fast, Filter::default(), false);
        for i in 0..3 {
            hub.publish("c", &event(&i.to_string(), "cpu"));
        }
        assert!(signal.slow.load(Ordering::Acquire));
        assert_eq!(hub.subscriptions(), 1);
        assert_eq!((0..3).filter(|_| fast_rx.try_recv().is_ok()).count(), 3);
    }

    #[test]
    fn resuming_buffers_live_frames_and_skips_replayed_ones() {
        let hub = hub();
        let (c, mut rx) = client(&hub, 8);
        hub.subscribe("c", c.clone(), Filter::default(), true);
        hub.publish("c", &event("a", "cpu"));
        hub.publish("c", &event("b", "cpu"));
        assert!(
            rx.try_recv().is_err(),
            "nothing goes out while history is replayed"
        );
        let replayed: HashSet<String> = ["a".to_owned()].into();
        assert!(hub.finish_resume("c", c.id, &replayed));
        let frame = rx.try_recv().unwrap();
        assert!(frame.as_str().contains(r#""id":"b""#));
        assert!(rx.try_recv().is_err());
        hub.publish("c", &event("c", "cpu"));
        assert!(rx.try_recv().is_ok(), "live after the resume");
    }

    /// Regression: an event written to history before the history query but published after
    /// the resume ended reached a resuming client twice (seen in CI as `e11` twice).
    #[test]
    fn a_replayed_event_whose_live_copy_comes_after_the_resume_is_not_sent_twice() {
        let hub = hub();
        let (c, mut rx) = client(&hub, 8);
        hub.subscribe("c", c.clone(), Filter::default(), true);
        hub.publish("c", &event("a", "cpu"));
        let replayed: HashSet<String> = ["a".to_owned(), "b".to_owned()].into();
        assert!(hub.finish_resume("c", c.id, &replayed));
        assert!(rx.try_recv().is_err(), "a came from history");
        hub.publish("c", &event("b", "cpu"));
        assert!(
            rx.try_recv().is_err(),
            "b's live copy came late: not sent again"
        );
        hub.publish("c", &event("d", "cpu"));
        assert!(rx.try_recv().unwrap().as_str().contains(r#""id":"d""#));
    }

    #[test]
    fn unsubscribing_the_last_client_frees_the_channel() {
        let hub = hub();
        let (a, _) = client(&hub, 1);
        let (b, _) = client(&hub, 1);
        hub.subscribe("c", a.clone(), Filter::default(), false);
        hub.subscribe("c", b.clone(), Filter::default(), false);
        assert!(!hub.unsubscribe("c", a.id));
        assert!(hub.unsubscribe("c", b.id));
        assert!(hub.channels().is_empty());
    }

    #[test]
    fn invalid_payloads_are_counted_not_delivered() {
        let hub = hub();
        let (a, mut rx) = client(&hub, 4);
        hub.subscribe("c", a, Filter::default(), false);
        hub.publish("c", b"not json");
        hub.publish("c", &[0xff, 0xfe]);
        assert!(rx.try_recv().is_err());
        assert_eq!(hub.metrics.events_invalid.get(), 2);
    }
}
