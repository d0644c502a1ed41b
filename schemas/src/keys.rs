//! The names of aiops's Redis pub/sub channels and keys, and their parsing: the one place that
//! knows them. The pipeline's sinks, the gateway, the tests and the benches all build and read
//! names here.
//!
//! Every name carries its tenant in braces, `aiops:{acme}:anomalies`: the braces are a Redis
//! Cluster hash tag, so all of a tenant's channels and keys hash to one slot (and one shard).

use std::fmt;

/// The channels a client can subscribe to, by the short name the WebSocket protocol uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Channel {
    /// Anomaly events; kept in a capped stream for resume.
    Anomalies,
    /// Drift events; live only.
    Drift,
    /// Detector configuration notices (`config_applied`, `config_rejected`); kept in a capped
    /// stream for resume.
    Config,
}

impl Channel {
    /// Every channel.
    pub const ALL: [Channel; 3] = [Channel::Anomalies, Channel::Drift, Channel::Config];

    /// The short name (`anomalies`, `drift`), as clients and tokens write it.
    pub const fn name(self) -> &'static str {
        match self {
            Channel::Anomalies => "anomalies",
            Channel::Drift => "drift",
            Channel::Config => "config",
        }
    }

    /// The channel a short name stands for.
    pub fn parse(name: &str) -> Option<Channel> {
        Channel::ALL
            .into_iter()
            .find(|channel| channel.name() == name)
    }

    /// Whether the channel's events are kept in a stream a client can resume from.
    pub fn keeps_history(self) -> bool {
        matches!(self, Channel::Anomalies | Channel::Config)
    }

    /// The Redis pub/sub channel of `tenant`'s events on this channel.
    pub fn key(self, tenant: &str) -> String {
        format!("aiops:{{{tenant}}}:{}", self.name())
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A Redis pub/sub channel name read back: whose, and which channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelKey<'a> {
    /// The tenant inside the hash tag.
    pub tenant: &'a str,
    /// The channel.
    pub channel: Channel,
}

impl<'a> ChannelKey<'a> {
    /// Reads `aiops:{tenant}:channel`; `None` for any other name (including history keys).
    pub fn parse(key: &'a str) -> Option<ChannelKey<'a>> {
        let rest = key.strip_prefix("aiops:{")?;
        let (tenant, channel) = rest.split_once("}:")?;
        if tenant.is_empty() || tenant.contains(['{', '}']) {
            return None;
        }
        Some(ChannelKey {
            tenant,
            channel: Channel::parse(channel)?,
        })
    }

    /// The stream that keeps this channel's history, if it keeps one.
    pub fn history_key(self) -> Option<String> {
        self.channel
            .keeps_history()
            .then(|| format!("{}:log", self.channel.key(self.tenant)))
    }
}

/// Redis pub/sub channel of a tenant's live anomaly events: `aiops:{tenant}:anomalies`.
pub fn anomalies_channel(tenant: &str) -> String {
    Channel::Anomalies.key(tenant)
}

/// Capped Redis stream holding a tenant's recent anomaly events, for resume:
/// `aiops:{tenant}:anomalies:log`.
pub fn anomalies_log_key(tenant: &str) -> String {
    format!("{}:log", anomalies_channel(tenant))
}

/// Redis pub/sub channel of a tenant's configuration notices: `aiops:{tenant}:config`.
pub fn config_channel(tenant: &str) -> String {
    Channel::Config.key(tenant)
}

/// Capped Redis stream holding a tenant's recent configuration notices, for resume:
/// `aiops:{tenant}:config:log`.
pub fn config_log_key(tenant: &str) -> String {
    format!("{}:log", config_channel(tenant))
}

/// Redis pub/sub channel on which the configuration API says that a detector configuration
/// changed (`<tenant>/<name>@<version>`), so pipelines look at the store now rather than at
/// their next poll. Not a tenant's channel: the gateway never serves it.
pub const CONFIG_CHANGES_CHANNEL: &str = "aiops:control:detectors";

/// Redis pub/sub channel of a tenant's drift events: `aiops:{tenant}:drift`.
pub fn drift_channel(tenant: &str) -> String {
    Channel::Drift.key(tenant)
}

/// The nodes a Redis URL setting names: one URL for a single node, or a Redis Cluster's seed
/// nodes separated by commas (`redis://r1:6379,redis://r2:6379`; blanks around them ignored).
/// The pipeline's sink and checkpoints and the gateway read `[redis] url` / `redis_url` this way.
pub fn redis_nodes(url: &str) -> impl Iterator<Item = &str> {
    url.split(',').map(str::trim).filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redis_url_setting_names_one_node_or_a_clusters_seeds() {
        assert_eq!(
            redis_nodes("redis://r:6379").collect::<Vec<_>>(),
            ["redis://r:6379"]
        );
        assert_eq!(
            redis_nodes(" redis://a:1 ,redis://b:2,, ").collect::<Vec<_>>(),
            ["redis://a:1", "redis://b:2"]
        );
        assert_eq!(redis_nodes(" , ").count(), 0);
    }
    use proptest::prelude::*;

    #[test]
    fn names_use_hash_tags() {
        assert_eq!(anomalies_channel("acme"), "aiops:{acme}:anomalies");
        assert_eq!(anomalies_log_key("acme"), "aiops:{acme}:anomalies:log");
        assert_eq!(drift_channel("acme"), "aiops:{acme}:drift");
    }

    #[test]
    fn channel_keys_parse_back_and_only_anomalies_keep_history() {
        let key = ChannelKey::parse("aiops:{acme}:anomalies").unwrap();
        assert_eq!(key.tenant, "acme");
        assert_eq!(key.channel, Channel::Anomalies);
        assert_eq!(
            key.history_key().as_deref(),
            Some("aiops:{acme}:anomalies:log")
        );
        let drift = ChannelKey::parse("aiops:{acme}:drift").unwrap();
        assert_eq!(drift.history_key(), None);
        for bad in [
            "aiops:{acme}:anomalies:log",
            "aiops:{}:anomalies",
            "aiops:acme:anomalies",
            "aiops:{acme}:other",
            "other:{acme}:drift",
            "aiops:{a{b}:drift",
        ] {
            assert_eq!(ChannelKey::parse(bad), None, "{bad}");
        }
        assert_eq!(Channel::parse("drift"), Some(Channel::Drift));
        assert_eq!(Channel::parse("Drift"), None);
    }

    proptest! {
        #[test]
        fn every_name_built_here_parses_back(tenant in "[a-zA-Z0-9_.-]{1,64}", drift: bool) {
            let channel = if drift { Channel::Drift } else { Channel::Anomalies };
            let key = channel.key(&tenant);
            let parsed = ChannelKey::parse(&key).unwrap();
            prop_assert_eq!(parsed.tenant, tenant.as_str());
            prop_assert_eq!(parsed.channel, channel);
        }
    }
}
