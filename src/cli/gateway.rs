//! `aiops gateway`: the WebSocket gateway; `aiops token`: development tokens for it.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use aiops_gateway::auth::{Claims, mint};
use aiops_gateway::{GatewayConfig, RunningGateway};

use crate::error::{Error, Result};

/// Arguments of `aiops gateway`.
#[derive(Debug, Args)]
#[command(
    after_help = "Protocol: docs/protocol.md. SIGTERM or Ctrl-C closes every connection with code 1001 and exits.\n\
    AIOPS_REDIS_URL overrides broker.redis_url, AIOPS_REDIS_CLUSTER (true or false) broker.redis_cluster."
)]
pub struct GatewayArgs {
    /// TOML configuration: listen, [broker], [auth], [limits] (see gateway.example.toml).
    #[arg(long, short = 'c', value_name = "FILE")]
    config: PathBuf,

    /// Address to listen on, overriding `listen`.
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
}

/// Arguments of `aiops token`.
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The gateway configuration whose HS key signs the token.
    #[arg(long, short = 'c', value_name = "FILE")]
    config: PathBuf,

    /// The tenant whose events the token grants.
    #[arg(long)]
    tenant: String,

    /// Channels (or globs) the token may subscribe to, comma-separated.
    #[arg(long, default_value = "anomalies,drift,config", value_delimiter = ',')]
    channels: Vec<String>,

    /// Lifetime (30m, 12h, ...).
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    ttl: Duration,

    /// The key to sign with, by kid (default: the first HS key).
    #[arg(long)]
    kid: Option<String>,

    /// The subject claim (who the token is for; the configuration API's audit log names it).
    #[arg(long)]
    sub: Option<String>,

    /// What the token may do through the HTTP API, comma-separated
    /// (`detectors:read,detectors:write`); none by default.
    #[arg(long, value_delimiter = ',')]
    scopes: Vec<String>,
}

pub fn run_gateway(args: GatewayArgs) -> Result<()> {
    let mut config = GatewayConfig::from_file(&args.config)?;
    if let Ok(url) = std::env::var("AIOPS_REDIS_URL") {
        config.broker.redis_url = Some(url);
    }
    if let Ok(cluster) = std::env::var("AIOPS_REDIS_CLUSTER") {
        config.broker.redis_cluster = matches!(cluster.trim(), "1" | "true" | "yes");
    }
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|source| Error::Runtime {
            what: "the async runtime",
            source,
        })?;
    runtime.block_on(async {
        let gateway = RunningGateway::start_with_routes(
            config.clone(),
            configuration_api(&config, None, None)?,
        )?;
        note!(
            "aiops gateway: listening on ws://{} ({}); GET /healthz /readyz; admin endpoint {}",
            gateway.address,
            config
                .broker
                .redis_url
                .as_deref()
                .map_or("in-memory broker".to_owned(), |u| format!("redis {u}")),
            gateway.admin_address.map_or("off".to_owned(), |a| format!(
                "http://{a} (/metrics /healthz /readyz)"
            )),
        );
        wait_for_signal().await;
        note!("aiops gateway: shutting down");
        gateway.shutdown(Duration::from_secs(5)).await;
        Ok::<(), Error>(())
    })
}

/// The configuration API's routes when `[api] store` is set (none otherwise), verifying tokens
/// with the gateway's keys. Previews read `preview` when given (the demo's generator), else
/// what `[api]` names.
pub fn configuration_api(
    config: &GatewayConfig,
    on_change: Option<aiops_control::ChangeHook>,
    preview: Option<std::sync::Arc<dyn aiops_control::PreviewData>>,
) -> Result<axum::Router> {
    let Some(dir) = &config.api.store else {
        return Ok(axum::Router::new());
    };
    let store = aiops_models::sqlite::SqliteStore::open(dir)?;
    let mut state = aiops_control::ApiState::new(
        std::sync::Arc::new(store),
        aiops_gateway::Authenticator::from_config(&config.auth)?,
        aiops_operators::Registry::builtin(),
    );
    let api = &config.api;
    let preview: Option<std::sync::Arc<dyn aiops_control::PreviewData>> =
        match (&api.preview_input, &api.preview_topic, &api.preview_brokers) {
            _ if preview.is_some() => preview,
            (Some(input), _, _) => Some(std::sync::Arc::new(FilePreview(input.clone()))),
            (None, Some(topic), Some(brokers)) => Some(topic_preview(topic, brokers)?),
            (None, Some(_), None) => {
                return Err(Error::Usage(
                    "[api] preview_topic needs preview_brokers".into(),
                ));
            }
            (None, None, _) => None,
        };
    #[cfg(feature = "redis")]
    if let Some(url) = &config.broker.redis_url {
        // Pipelines listening on the same Redis apply a change at once, not at their next poll.
        let notifier = aiops_connectors::changes::ChangeNotifier::new(
            aiops_connectors::redis_client::first_node(url),
        )?;
        state = state.with_change_hook(std::sync::Arc::new(move |stored| {
            let what = format!("{}/{}@{}", stored.tenant, stored.name, stored.version);
            if let Err(error) = notifier.notify(&what) {
                tracing::warn!(%error, "aiops gateway: could not tell the pipelines of a change; they see it at their next poll");
            }
        }));
    }
    if let Some(hook) = on_change {
        state = state.with_change_hook(hook);
    }
    let previews = preview.as_ref().map_or("off".to_owned(), |p| p.describe());
    if let Some(preview) = preview {
        state = state.with_preview(preview);
    }
    note!(
        "aiops gateway: configuration API on /api/v1/ (store {}; previews from {previews})",
        dir.display()
    );
    Ok(aiops_control::router(std::sync::Arc::new(state)))
}

/// Previews over a file or directory of points (the embedded mode): read whole, as
/// `aiops replay --input` reads it.
struct FilePreview(std::path::PathBuf);

impl aiops_control::PreviewData for FilePreview {
    fn source(
        &self,
        _read_from: Option<aiops_schemas::TimestampMs>,
    ) -> std::result::Result<std::sync::Arc<dyn aiops_pipeline::source::Source>, String> {
        use aiops_connectors::source::file::{DirectorySource, FileSource};
        let source: std::sync::Arc<dyn aiops_pipeline::source::Source> = if self.0.is_dir() {
            std::sync::Arc::new(DirectorySource::new(&self.0, None).map_err(|e| e.to_string())?)
        } else {
            std::sync::Arc::new(FileSource::new(&self.0, None).map_err(|e| e.to_string())?)
        };
        Ok(source)
    }

    fn describe(&self) -> String {
        self.0.display().to_string()
    }
}

/// Previews over a time range of a topic, as `aiops replay --topic --from --warmup` reads it.
#[cfg(feature = "kafka")]
fn topic_preview(
    topic: &str,
    brokers: &str,
) -> Result<std::sync::Arc<dyn aiops_control::PreviewData>> {
    use aiops_pipeline::config::{KafkaConfig, TopicConfig};
    struct TopicPreview {
        kafka: KafkaConfig,
        topic: TopicConfig,
    }
    impl aiops_control::PreviewData for TopicPreview {
        fn source(
            &self,
            read_from: Option<aiops_schemas::TimestampMs>,
        ) -> std::result::Result<std::sync::Arc<dyn aiops_pipeline::source::Source>, String>
        {
            use aiops_connectors::source::kafka_range::{KafkaRangeSource, RangePlan};
            let plan = RangePlan::new(&self.kafka, &self.topic, read_from, Duration::from_secs(30))
                .map_err(|e| e.to_string())?;
            Ok(std::sync::Arc::new(KafkaRangeSource::new(
                self.kafka.clone(),
                self.topic.clone(),
                plan,
            )))
        }

        fn describe(&self) -> String {
            format!("kafka:{}", self.topic.name)
        }
    }
    Ok(std::sync::Arc::new(TopicPreview {
        kafka: KafkaConfig {
            brokers: brokers.to_owned(),
            group: "aiops-preview".into(),
            topics: Vec::new(),
            dead_letter_suffix: ".dlq".into(),
            anomalies_topic: None,
            options: Default::default(),
            instance_id: None,
            rejoin_stalled_after_ms: aiops_pipeline::config::DEFAULT_REJOIN_STALLED_MS,
        },
        topic: TopicConfig {
            name: topic.to_owned(),
            format: aiops_schemas::Format::Json,
            tenant: None,
            precision: None,
        },
    }))
}

#[cfg(not(feature = "kafka"))]
fn topic_preview(_: &str, _: &str) -> Result<std::sync::Arc<dyn aiops_control::PreviewData>> {
    super::history::no_kafka()
}

async fn wait_for_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}

pub fn run_token(args: TokenArgs) -> Result<()> {
    let config = GatewayConfig::from_file(&args.config)?;
    let key = config
        .auth
        .keys
        .iter()
        .find(|k| match &args.kid {
            Some(kid) => k.kid.as_deref() == Some(kid.as_str()),
            None => k.algorithm.starts_with("HS"),
        })
        .ok_or_else(|| {
            Error::Usage("no HS key (with that kid) in the configuration to sign with".into())
        })?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let claims = Claims {
        tenant: args.tenant,
        channels: args.channels,
        // Saturating: a lifetime past 2^64 s is "forever" (the gateway clamps it), not a panic.
        exp: now.saturating_add(args.ttl.as_secs()),
        nbf: None,
        sub: args.sub,
        aud: config.auth.audience.clone().map(Into::into),
        iss: config.auth.issuer.clone(),
        scope: (!args.scopes.is_empty()).then(|| args.scopes.join(" ")),
    };
    aiops_schemas::Limits::default()
        .check_tenant(&claims.tenant)
        .map_err(|e| Error::Usage(format!("--tenant: {e}")))?;
    println!("{}", mint(key, &claims)?);
    Ok(())
}
