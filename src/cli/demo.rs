//! `aiops demo`: the synthetic generator through the pipeline, anomalies printed as they are
//! caught, a live summary, and at the end how many of the injected anomalies were caught.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use clap::Args;

use aiops_connectors::sink::bus::Bus;
use aiops_connectors::source::synthetic::{FIRST_ANOMALY_TICK, SyntheticConfig, SyntheticSource};
use aiops_pipeline::run as run_pipeline;
use aiops_pipeline::sink::{Fanout, Sink};
use aiops_schemas::{AnomalyEvent, SeriesKey, TimestampMs, format_rfc3339};

use super::PipelineArgs;
use super::output::{count, event_line};
use crate::error::{Error, Result};

/// Arguments of `aiops demo`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    aiops demo --duration 30s\n  \
    aiops demo --series 2000 --rate 0 --duration 10s   # as fast as the machine goes\n  \
    aiops demo --rate 0 --points 3000   # two days of every series, then a score\n  \
    aiops demo --json | jq .severity")]
pub struct DemoArgs {
    /// Stop after this long (30s, 2m, ...); runs until Ctrl-C when left out.
    #[arg(long, short = 'd', value_parser = humantime::parse_duration)]
    duration: Option<Duration>,

    /// Stop once every series has this many points (at one a minute, 1440 is a day).
    #[arg(long)]
    points: Option<u64>,

    /// Number of generated series.
    #[arg(long, default_value_t = 200)]
    series: usize,

    /// Points per second over all series; 0 runs as fast as the machine allows.
    #[arg(long, default_value_t = 10_000.0)]
    rate: f64,

    /// Event time between two points of a series (1m, 10s, ...).
    #[arg(long, default_value = "1m", value_parser = humantime::parse_duration)]
    interval: Duration,

    /// Mean number of points between two injected anomalies of one series.
    #[arg(long, default_value_t = 1500)]
    anomaly_gap: u64,

    /// Seed of the generator: the same seed gives the same series and anomalies.
    #[arg(long, default_value_t = 1)]
    seed: u64,

    /// Print events as JSON lines instead of text.
    #[arg(long)]
    json: bool,

    /// Also serve the events over WebSocket on this address (an in-process gateway fed by the
    /// pipeline's bus); a ready token is printed.
    #[arg(long, value_name = "ADDRESS")]
    serve: Option<std::net::SocketAddr>,

    #[command(flatten)]
    pipeline: PipelineArgs,
}

/// Prints events as they arrive and remembers where they fell.
struct LivePrinter {
    json: bool,
    caught: Vec<(SeriesKey, TimestampMs)>,
}

impl Sink for LivePrinter {
    fn events(&mut self, events: &[AnomalyEvent]) -> aiops_pipeline::Result<()> {
        let mut out = std::io::stdout().lock();
        for event in events {
            self.caught.push((event.series.key, event.timestamp));
            let line = if self.json {
                serde_json::to_string(event).unwrap_or_default()
            } else {
                event_line(event)
            };
            writeln!(out, "{line}").map_err(|source| aiops_pipeline::Error::Sink {
                sink: "standard output".into(),
                source,
            })?;
        }
        out.flush().map_err(|source| aiops_pipeline::Error::Sink {
            sink: "standard output".into(),
            source,
        })
    }
}

pub fn run(args: DemoArgs) -> Result<()> {
    if !(args.rate.is_finite() && args.rate >= 0.0) {
        return Err(Error::Usage(format!(
            "--rate must be zero or a positive number, not {}",
            args.rate
        )));
    }
    let interval_ms = i64::try_from(args.interval.as_millis())
        .ok()
        .filter(|&ms| ms > 0)
        .ok_or_else(|| Error::Usage("--interval must be at least 1ms".into()))?;
    let config = args.pipeline.load_config()?;
    let mut options = args.pipeline.run_options(&config)?;
    let generator = SyntheticConfig {
        series: args.series,
        interval_ms,
        start_ms: aiops_pipeline::system_now() / interval_ms * interval_ms,
        points_per_second: (args.rate > 0.0).then_some(args.rate),
        seed: args.seed,
        mean_anomaly_gap: args.anomaly_gap.max(1),
        ticks: args.points,
        ..SyntheticConfig::default()
    };
    let source = Arc::new(SyntheticSource::new(generator.clone(), options.workers)?);
    if let Some(duration) = args.duration {
        let stop = options.stop.clone();
        std::thread::spawn(move || {
            std::thread::sleep(duration);
            stop.store(true, Ordering::Relaxed);
        });
    }
    note!(
        "aiops demo: {} series, {} points/s, one point per series every {}; the first anomalies are injected after {} points per series. Ctrl-C stops.",
        count(args.series as u64),
        if args.rate > 0.0 {
            count(args.rate as u64)
        } else {
            "unlimited".into()
        },
        humantime::format_duration(args.interval),
        FIRST_ANOMALY_TICK,
    );
    let started = Instant::now();
    let mut printer = LivePrinter {
        json: args.json,
        caught: Vec::new(),
    };
    let bus = Bus::default();
    // With --serve, detector configurations made through the API apply to the demo's series:
    // a store of its own (a fresh temporary directory, removed at the end, however the demo
    // ends) and a model watch the API wakes.
    let store_dir = tempfile::Builder::new()
        .prefix("aiops-demo-")
        .tempdir()
        .map_err(|source| Error::Runtime {
            what: "the demo's configuration store",
            source,
        })?;
    let _served = match args.serve {
        Some(address) => {
            let store: Arc<dyn aiops_models::ModelStore> =
                Arc::new(aiops_models::sqlite::SqliteStore::open(store_dir.path())?);
            let watch = aiops_models::watch::ModelWatch::new();
            watch.refresh(store.as_ref())?;
            watch
                .clone()
                .spawn_poller(store, Duration::from_secs(1), options.stop.clone())
                .map_err(|source| Error::Runtime {
                    what: "the model poller",
                    source,
                })?;
            options.models = Some(watch.clone());
            Some(serve(address, &bus, &source, store_dir.path(), &watch)?)
        }
        None => None,
    };
    let mut last_points = 0;
    let status_source = source.clone();
    let sinks: Vec<Box<dyn Sink + '_>> = vec![Box::new(&mut printer), Box::new(bus)];
    let summary = run_pipeline(source.clone(), Fanout(sinks), options, |stats| {
        let event_time = generator.start_ms + status_source.ticks_done() as i64 * interval_ms;
        note!(
            "[{:>4}s] {} points/s | {} series | event time {} | {} anomalies ({} critical) | {} rejected",
            started.elapsed().as_secs(),
            count(stats.points_in - last_points),
            count(stats.series),
            &format_rfc3339(event_time)[..16],
            count(stats.events_out),
            count(stats.critical_out),
            count(stats.dead_letters),
        );
        last_points = stats.points_in;
    })?;
    let ticks = source.ticks_done();
    note!(
        "aiops demo: {} points of {} series in {:.1} s ({} points/s), {} anomaly events",
        count(summary.stats.points_in),
        count(summary.stats.series),
        summary.elapsed.as_secs_f64(),
        count(summary.points_per_second() as u64),
        count(summary.stats.events_out),
    );
    note!("{}", source.score(&printer.caught, ticks));
    // The demo's configurations live as long as the demo: `store_dir` goes when dropped.
    drop(store_dir);
    Ok(())
}

/// An in-process gateway on `address` with the in-memory broker, fed by the pipeline's bus; a
/// fresh signing key per run. Lives as long as the returned runtime.
fn serve(
    address: std::net::SocketAddr,
    bus: &Bus,
    generator: &Arc<SyntheticSource>,
    store: &std::path::Path,
    watch: &Arc<aiops_models::watch::ModelWatch>,
) -> Result<tokio::runtime::Runtime> {
    use aiops_gateway::RunningGateway;
    use aiops_gateway::auth::{Claims, mint};
    use aiops_gateway::config::{GatewayConfig, KeyConfig};

    let mut secret = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut secret))
        .map_err(|e| Error::Usage(format!("cannot read /dev/urandom for a signing key: {e}")))?;
    let key = KeyConfig {
        kid: Some("demo".into()),
        algorithm: "HS256".into(),
        secret: Some(secret.iter().map(|b| format!("{b:02x}")).collect()),
        secret_file: None,
        public_key_file: None,
    };
    let mut config = GatewayConfig {
        listen: address,
        // The demo's gateway serves events and the dashboard; nothing scrapes it.
        admin_listen: None,
        ..GatewayConfig::default()
    };
    config.auth.keys = vec![key.clone()];
    // The configuration API on the demo's own store, which its pipeline applies.
    config.api.store = Some(store.to_owned());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|source| Error::Runtime {
            what: "the async runtime",
            source,
        })?;
    // A change wakes the pipeline's model watch at once (in process: no Redis needed).
    let woken = watch.clone();
    let preview: Arc<dyn aiops_control::PreviewData> = Arc::new(DemoPreview(generator.clone()));
    let routes = super::gateway::configuration_api(
        &config,
        Some(Arc::new(move |_| woken.wake())),
        Some(preview),
    )?;
    let gateway = runtime.block_on(async { RunningGateway::start_with_routes(config, routes) })?;
    let memory = gateway
        .memory
        .clone()
        .expect("no Redis configured: the in-memory broker");
    let mut messages = bus.subscribe();
    runtime.spawn(async move {
        let _gateway = gateway;
        loop {
            match messages.recv().await {
                Ok(message) => {
                    memory.publish(&message.channel, &String::from_utf8_lossy(&message.payload))
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    });
    let claims = Claims {
        tenant: generator.config().tenant.clone(),
        channels: vec!["*".into()],
        exp: (aiops_pipeline::system_now() / 1000) as u64 + 24 * 3600,
        nbf: None,
        sub: Some("demo".into()),
        aud: None,
        iss: None,
        scope: Some("detectors:read detectors:write".into()),
    };
    let token = mint(&key, &claims)?;
    note!("aiops demo: the UI on http://{address}/#token={token}");
    note!("aiops demo: events on ws://{address}/?token={token}");
    note!(
        "aiops demo: detector configurations: curl -H 'Authorization: Bearer {token}' http://{address}/api/v1/presets"
    );
    note!(
        r#"  subscribe with {{"type":"subscribe","channel":"anomalies"}} (protocol: docs/protocol.md)"#
    );
    Ok(runtime)
}

/// Previews and series searches of the demo read its generator: the same seed and series, up
/// to the tick the demo has reached (generated anew, as fast as it goes, for each preview).
struct DemoPreview(Arc<SyntheticSource>);

impl aiops_control::PreviewData for DemoPreview {
    fn source(
        &self,
        read_from: Option<TimestampMs>,
    ) -> std::result::Result<Arc<dyn aiops_pipeline::source::Source>, String> {
        let config = SyntheticConfig {
            ticks: Some(self.0.ticks_done()),
            points_per_second: None,
            ..self.0.config().clone()
        };
        let generator = SyntheticSource::new(config, 1).map_err(|e| e.to_string())?;
        Ok(Arc::new(FromTime {
            inner: Arc::new(generator),
            from: read_from.unwrap_or(TimestampMs::MIN),
        }))
    }

    fn describe(&self) -> String {
        "the demo's generator".to_owned()
    }

    fn newest(&self) -> Option<TimestampMs> {
        let config = self.0.config();
        let ticks = i64::try_from(self.0.ticks_done()).unwrap_or(i64::MAX);
        Some(
            config
                .start_ms
                .saturating_add(ticks.saturating_sub(1).saturating_mul(config.interval_ms)),
        )
    }
}

/// A source without the points before `from`: the generator has to run from its first tick
/// (its schedule of anomalies depends on all of them), but a preview scores only the range and
/// its warm-up.
struct FromTime {
    inner: Arc<dyn aiops_pipeline::source::Source>,
    from: TimestampMs,
}

impl aiops_pipeline::source::Source for FromTime {
    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn formats(
        &self,
        base: &aiops_schemas::ParseOptions,
    ) -> aiops_pipeline::dataflow::RecordFormats {
        self.inner.formats(base)
    }

    fn open(
        &self,
        index: usize,
        peers: usize,
        context: &aiops_pipeline::source::SourceContext,
    ) -> aiops_pipeline::Result<Box<dyn aiops_pipeline::source::WorkerSource>> {
        Ok(Box::new(FromTimeWorker {
            inner: self.inner.open(index, peers, context)?,
            from: self.from,
        }))
    }
}

struct FromTimeWorker {
    inner: Box<dyn aiops_pipeline::source::WorkerSource>,
    from: TimestampMs,
}

impl aiops_pipeline::source::WorkerSource for FromTimeWorker {
    fn poll(&mut self) -> aiops_pipeline::Result<aiops_pipeline::source::Poll> {
        use aiops_pipeline::source::{Batch, Poll};
        let mut poll = self.inner.poll()?;
        if let Poll::Ready {
            batch: Batch::Points(points),
            ..
        } = &mut poll
        {
            points.retain(|p| p.point.timestamp >= self.from);
        }
        Ok(poll)
    }

    fn next_epoch(&self) -> u64 {
        self.inner.next_epoch()
    }
}
