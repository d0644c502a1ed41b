//! Notifications that detector configurations changed, over Redis pub/sub
//! ([`CONFIG_CHANGES_CHANNEL`]): the configuration API publishes one after each change, and
//! every pipeline listening wakes its model watch, so a change is applied at the next epoch
//! rather than at the next poll of the store. The poll stays: a notification lost while Redis
//! or a pipeline was away only delays a change to the next poll.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use aiops_pipeline::{Error, Result};
use aiops_schemas::CONFIG_CHANGES_CHANNEL;

/// Publishes change notifications; one connection, opened again after a failure.
pub struct ChangeNotifier {
    client: redis::Client,
    connection: Mutex<Option<redis::Connection>>,
}

impl ChangeNotifier {
    /// A notifier for the Redis at `url` (connects at the first notification).
    pub fn new(url: &str) -> Result<ChangeNotifier> {
        let client = redis::Client::open(url)
            .map_err(|e| Error::redis(format!("invalid URL {url:?}"), e))?;
        Ok(ChangeNotifier {
            client,
            connection: Mutex::new(None),
        })
    }

    /// Says that `what` (`<tenant>/<name>@<version>`) changed.
    pub fn notify(&self, what: &str) -> Result<()> {
        let mut connection = self
            .connection
            .lock()
            .map_err(|_| Error::config("a thread notifying changes panicked"))?;
        // One retry on a fresh connection: the kept one may have been closed by Redis.
        for _ in 0..2 {
            if connection.is_none() {
                *connection = Some(
                    self.client
                        .get_connection_with_timeout(Duration::from_secs(2))
                        .map_err(|e| Error::redis("cannot connect to publish a change", e))?,
                );
            }
            let Some(open) = connection.as_mut() else {
                continue;
            };
            match redis::cmd("PUBLISH")
                .arg(CONFIG_CHANGES_CHANNEL)
                .arg(what)
                .query::<i64>(open)
            {
                Ok(_) => return Ok(()),
                Err(_) => *connection = None,
            }
        }
        Err(Error::redis(
            "cannot publish a change",
            std::io::Error::other("the connection failed twice"),
        ))
    }
}

/// Listens for change notifications on the Redis at `url` until `stop`, calling `on_change`
/// for each; reconnects (every second) while Redis is away.
pub fn spawn_listener(
    url: &str,
    stop: Arc<AtomicBool>,
    on_change: impl Fn() + Send + 'static,
) -> Result<std::thread::JoinHandle<()>> {
    let client =
        redis::Client::open(url).map_err(|e| Error::redis(format!("invalid URL {url:?}"), e))?;
    std::thread::Builder::new()
        .name("aiops-changes".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if listen(&client, &stop, &on_change).is_err() {
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        })
        .map_err(|e| Error::redis("cannot start the change listener", e))
}

/// One subscription, until it fails or `stop`.
fn listen(
    client: &redis::Client,
    stop: &AtomicBool,
    on_change: &impl Fn(),
) -> redis::RedisResult<()> {
    let mut connection = client.get_connection_with_timeout(Duration::from_secs(2))?;
    // A Redis that accepts the connection but never answers the SUBSCRIBE must not hold this
    // thread past a stop.
    connection.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut pubsub = connection.as_pubsub();
    pubsub.subscribe(CONFIG_CHANGES_CHANNEL)?;
    // A change made while this listener was away is not lost: the caller's poll finds it.
    on_change();
    pubsub.set_read_timeout(Some(Duration::from_millis(200)))?;
    while !stop.load(Ordering::Relaxed) {
        match pubsub.get_message() {
            Ok(_) => on_change(),
            Err(error) if error.is_timeout() => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_url_is_refused_with_its_reason() {
        let error = ChangeNotifier::new("not a url").err().unwrap().to_string();
        assert!(error.contains("invalid URL"), "{error}");
    }
}
