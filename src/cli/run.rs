//! `aiops run`: the long-running pipeline, Kafka in, Redis out, at least once, checkpointed.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use clap::Args;

use aiops_connectors::sink::kafka::KafkaSink;
use aiops_connectors::sink::redis::RedisSink;
use aiops_connectors::source::kafka::{KafkaSource, ensure_topics};
use aiops_models::open_store;
use aiops_models::retrain::Retrainer;
use aiops_models::watch::ModelWatch;
use aiops_pipeline::PipelineConfig;
use aiops_pipeline::checkpoint::FileStore;
use aiops_pipeline::config::ENVIRONMENT_OVERRIDES;
use aiops_pipeline::run as run_pipeline;
use aiops_pipeline::sink::{Fanout, Sink};

use super::output::count;
use super::stop_on_ctrl_c;
use crate::error::{Error, Result};

/// Arguments of `aiops run`.
#[derive(Debug, Args)]
#[command(after_help = environment_help())]
pub struct RunArgs {
    /// TOML configuration: [kafka], [redis], [checkpoint], [pipeline], [parse], [[templates]]
    /// (see aiops.example.toml). Environment variables override it.
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,

    /// Timely worker threads (one Kafka consumer each), overriding pipeline.workers.
    #[arg(long, short = 'w', value_parser = clap::value_parser!(u16).range(1..=256))]
    workers: Option<u16>,

    /// Stop gracefully once this many points have been read (for benchmarks and tests).
    #[arg(long, value_name = "N")]
    max_points: Option<u64>,

    /// Stop gracefully when no point has arrived for this long since the last point or
    /// change of partitions, and neither this process nor its consumer group has anything
    /// left to read (2s, 1m): for backfills, benchmarks and tests.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    exit_when_idle: Option<Duration>,
}

fn environment_help() -> String {
    let mut help = String::from("Environment overrides:\n");
    for (name, field) in ENVIRONMENT_OVERRIDES {
        help.push_str(&format!("  {name:<22} {field}\n"));
    }
    help.push_str(
        "\nSIGTERM or Ctrl-C: stop reading, finish the epoch, publish, checkpoint, commit, exit.",
    );
    help
}

pub fn run(args: RunArgs) -> Result<()> {
    let mut config = match &args.config {
        Some(path) => PipelineConfig::from_file(path)?,
        None => PipelineConfig::default(),
    };
    config.apply_environment(|name| std::env::var(name).ok())?;
    if let Some(workers) = args.workers {
        config.pipeline.workers = usize::from(workers);
    }
    config.validate_for_run()?;
    let (Some(kafka), Some(redis)) = (config.kafka.clone(), config.redis.clone()) else {
        unreachable!("validate_for_run checked both sections");
    };

    let mut side_topics: Vec<(String, i32)> = kafka
        .topics
        .iter()
        .map(|t| (format!("{}{}", t.name, kafka.dead_letter_suffix), 1))
        .collect();
    side_topics.extend(kafka.anomalies_topic.iter().map(|t| (t.clone(), 1)));
    let side: Vec<(&str, i32)> = side_topics.iter().map(|(t, p)| (t.as_str(), *p)).collect();
    ensure_topics(&kafka, &side)?;

    // Checkpoints per consumer group: two pipelines reading the same topic keep apart.
    let store: Arc<dyn aiops_pipeline::checkpoint::StateStore> = match config.checkpoint.store {
        aiops_pipeline::config::CheckpointStore::File => {
            Arc::new(FileStore::new(config.checkpoint.dir.join(&kafka.group)))
        }
        aiops_pipeline::config::CheckpointStore::Redis => {
            Arc::new(aiops_connectors::checkpoint::RedisStateStore::new(
                &redis.url,
                redis.cluster,
                &kafka.group,
            )?)
        }
    };
    let source = Arc::new(KafkaSource::new(
        kafka.clone(),
        store,
        Duration::from_millis(config.pipeline.epoch_ms),
        Duration::from_millis(config.checkpoint.interval_ms),
    )?);
    let sinks: Vec<Box<dyn Sink>> = vec![
        Box::new(RedisSink::new(redis.clone())?),
        Box::new(KafkaSink::new(&kafka)?),
    ];

    let mut options = aiops_pipeline::RunOptions::new(config.pipeline.workers);
    options.templates = config.template_set()?;
    options.parse = config.parse.clone();
    options.stop = stop_on_ctrl_c();
    options.progress_interval = Duration::from_millis(250);
    let drift_on = config.drift.enabled;
    if drift_on {
        options.drift = Some(config.drift.clone());
        if config.drift.retrain.enabled
            && config.models.dir.is_none()
            && config.models.scylla.is_none()
        {
            note!("aiops run: drift.retrain is on but [models] dir is not set: no retraining");
        }
    }
    let (mut retrainer_stats, mut retrainer_thread) = (None, None);
    let store_configured = config.models.dir.is_some() || config.models.scylla.is_some();
    let models = match store_configured {
        true => {
            let store = open_store(&config.models, None)?;
            if config.drift.enabled && config.drift.retrain.enabled {
                let retrainer = Retrainer::spawn(
                    store.clone(),
                    options.templates.clone(),
                    config.drift.retrain.clone(),
                    options.stop.clone(),
                )
                .map_err(|source| Error::Runtime {
                    what: "the retrainer",
                    source,
                })?;
                options.retrain = Some(retrainer.requests.clone());
                retrainer_stats = Some(retrainer.stats.clone());
                retrainer_thread = Some(retrainer.thread);
            }
            let watch = ModelWatch::new();
            // Start with the active versions rather than swapping to them after a poll.
            watch.refresh(store.as_ref())?;
            let poller = watch
                .clone()
                .spawn_poller(
                    store,
                    Duration::from_millis(config.models.poll_ms),
                    options.stop.clone(),
                )
                .map_err(|source| Error::Runtime {
                    what: "the model poller",
                    source,
                })?;
            // The configuration API says over Redis when a configuration changed: look now.
            let woken = watch.clone();
            let _listener = aiops_connectors::changes::spawn_listener(
                aiops_connectors::redis_client::first_node(&redis.url),
                options.stop.clone(),
                move || woken.wake(),
            )?;
            let active: Vec<String> = watch
                .current()
                .models
                .values()
                .map(|m| m.version.id.clone())
                .collect();
            let place = match (&config.models.scylla, &config.models.dir) {
                (Some(nodes), _) => format!("scylla {nodes} keyspace {}", config.models.keyspace),
                (None, Some(dir)) => dir.display().to_string(),
                (None, None) => String::new(),
            };
            note!(
                "aiops run: model store {place}; active versions: {}",
                if active.is_empty() {
                    "none (configured templates)".to_owned()
                } else {
                    active.join(", ")
                }
            );
            options.models = Some(watch.clone());
            Some((watch, poller))
        }
        false => None,
    };
    let status_every = Duration::from_secs(config.pipeline.status_interval_s);
    note!(
        "aiops run: {} with {} workers → redis {}; checkpoints every {} ms in {}",
        aiops_pipeline::source::Source::describe(source.as_ref()),
        config.pipeline.workers,
        redis.url,
        config.checkpoint.interval_ms,
        config.checkpoint.dir.display(),
    );

    // Kept alive until the pipeline stops.
    let _admin = match config.pipeline.metrics_listen {
        Some(address) => {
            let admin = serve_admin(
                address,
                options.counters.clone(),
                redis.url.clone(),
                redis.cluster,
            )?;
            note!(
                "aiops run: admin endpoint at http://{}: /metrics /healthz /readyz",
                admin.address
            );
            Some(admin)
        }
        None => None,
    };
    let started = Instant::now();
    let (mut last_status, mut last_points) = (Instant::now(), 0);
    let stop = options.stop.clone();
    let (max_points, idle_limit) = (args.max_points, args.exit_when_idle);
    // (when, points) at the first and the last reading that saw new points: a rate that
    // leaves out start-up and idle time.
    let mut busy: Option<((Instant, u64), (Instant, u64))> = None;
    // Idle time counts from the later of the last new point and the last change of
    // partitions: a partition handed over by a rebalance (another process leaving) must be read
    // before this one may call itself idle. (Regression: with four processes in a group, the
    // last one left right after inheriting a departed peer's partitions, with their tails
    // unread.)
    let mut partitions_since = (started, 0u64, 0u64);
    // And the group must have nothing left either: a member killed without leaving holds its
    // partitions until its session expires, and their records are nobody's lag meanwhile.
    // (Regression: a restarted process exited idle with 8,000 points unread in the group.)
    let mut group_checked: Option<Instant> = None;
    let summary = run_pipeline(source.clone(), Fanout(sinks), options, |stats| {
        if (stats.partitions, stats.assignments) != (partitions_since.1, partitions_since.2) {
            partitions_since = (Instant::now(), stats.partitions, stats.assignments);
        }
        match &mut busy {
            None if stats.points_in > 0 => {
                busy = Some((
                    (Instant::now(), stats.points_in),
                    (Instant::now(), stats.points_in),
                ))
            }
            Some((_, last)) if stats.points_in > last.1 => {
                *last = (Instant::now(), stats.points_in)
            }
            _ => {}
        }
        if max_points.is_some_and(|max| stats.points_in >= max) {
            stop.store(true, Ordering::Relaxed);
        }
        if let Some(limit) = idle_limit {
            let last_point = busy.map_or(started, |(_, (last, _))| last);
            // Nothing left behind either, as far as the last statistics report knows.
            let idle =
                last_point.max(partitions_since.0).elapsed() >= limit && stats.consumer_lag == 0;
            if idle && group_checked.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
                group_checked = Some(Instant::now());
                match source.group_lag(Duration::from_secs(5)) {
                    Ok(0) => stop.store(true, Ordering::Relaxed),
                    Ok(lag) => tracing::debug!(
                        lag,
                        "aiops run: idle, but the group has {lag} records left"
                    ),
                    Err(error) => {
                        note!("aiops run: idle; cannot read the group's lag ({error}), stopping");
                        stop.store(true, Ordering::Relaxed);
                    }
                }
            }
        }
        if !status_every.is_zero() && last_status.elapsed() >= status_every {
            let rate = (stats.points_in - last_points) as f64 / last_status.elapsed().as_secs_f64();
            let drift_status = if drift_on {
                format!(" | {} drift events", count(stats.drift_events))
            } else {
                String::new()
            };
            let models_status = models.as_ref().map_or(drift_status.clone(), |(watch, _)| {
                let ids: Vec<String> = watch
                    .current()
                    .models
                    .values()
                    .map(|m| m.version.id.clone())
                    .collect();
                let trouble = watch
                    .last_error()
                    .map_or(String::new(), |e| format!(" ({e})"));
                let retrained = retrainer_stats.as_ref().map_or(String::new(), |s| {
                    format!(
                        " | retrained {} ({} active)",
                        s.trained.load(Ordering::Relaxed),
                        s.activated.load(Ordering::Relaxed)
                    )
                });
                format!(
                    "{drift_status} | models {}{trouble}{retrained}",
                    ids.join(",")
                )
            });
            note!(
                "[{:>6}s] {} points/s | lag {} | {} series | {} anomalies | {} dead letters | {} checkpoints{}",
                started.elapsed().as_secs(),
                count(rate as u64),
                count(stats.consumer_lag),
                count(stats.series),
                count(stats.events_out),
                count(stats.dead_letters),
                count(stats.checkpoints),
                models_status,
            );
            (last_status, last_points) = (Instant::now(), stats.points_in);
        }
    });
    source.close();
    if let Some((_, poller)) = models {
        stop.store(true, Ordering::Relaxed);
        let _ = poller.join();
    }
    if let Some(thread) = retrainer_thread {
        let _ = thread.join();
    }
    let summary = summary.map_err(Error::from)?;
    let stats = summary.stats;
    note!(
        "aiops run: stopped after {:.1} s: {} points ({} points/s), {} series ({} restored from checkpoints), {} anomalies, {} dead letters, {} checkpoints",
        summary.elapsed.as_secs_f64(),
        count(stats.points_in),
        count(summary.points_per_second() as u64),
        count(stats.series),
        count(stats.restored),
        count(stats.events_out),
        count(stats.dead_letters),
        count(stats.checkpoints),
    );
    if let Some(((first, first_points), (last, last_points))) = busy {
        let seconds = last.duration_since(first).as_secs_f64();
        if seconds > 0.0 {
            let points = last_points - first_points;
            note!(
                "aiops run: busy rate: {} points in the {seconds:.2} s between the first and the last reading that saw new points: {} points/s",
                count(points),
                count((points as f64 / seconds) as u64),
            );
        }
    }
    Ok(())
}

/// The admin endpoint, on a thread of its own so a scrape never waits for the workers:
/// `/metrics`, `/healthz`, and `/readyz`, ready while this process has Kafka partitions and Redis
/// answers a `PING`.
fn serve_admin(
    address: std::net::SocketAddr,
    counters: Arc<aiops_pipeline::Counters>,
    redis_url: String,
    redis_cluster: bool,
) -> Result<aiops_telemetry::AdminServer> {
    let page = counters.clone();
    aiops_telemetry::AdminServer::start_on_thread(
        address,
        Arc::new(move || page.prometheus()),
        Arc::new(move || {
            if counters.read().partitions == 0 {
                return Err("no Kafka partition assigned to this process".to_owned());
            }
            aiops_connectors::sink::redis::ping(&redis_url, redis_cluster, Duration::from_secs(1))
                .map_err(|e| format!("redis does not answer: {e}"))
        }),
    )
    .map_err(Error::Admin)
}
