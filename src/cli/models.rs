//! `aiops models` (list, show, diff, activate, roll back, delete, audit) and `aiops train`.

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Subcommand, ValueEnum};

use aiops_connectors::source::file::FileSource;
use aiops_models::artifact::ModelArtifact;
use aiops_models::train::{Incumbent, TrainOptions, train};
use aiops_models::{Actor, ModelScope, ModelStore, ModelVersion, diff_parameters, open_store};
use aiops_operators::{Template, TemplateSet};
use aiops_pipeline::PipelineConfig;
use aiops_schemas::{TimestampMs, format_rfc3339};

use super::history::{HistoryArgs, parse_time};
use super::output::emit;
use crate::error::{Error, Result};

/// Where the store is and who is acting.
#[derive(Debug, Args)]
struct StoreArgs {
    /// Model store directory [default: `[models] dir` of the configuration, else
    /// ./aiops-models]; `[models] scylla` in the configuration uses ScyllaDB instead.
    #[arg(long, env = "AIOPS_MODELS", value_name = "DIR", global = true)]
    store: Option<PathBuf>,

    /// TOML configuration (for `[models] dir` and the templates).
    #[arg(long, short = 'c', value_name = "FILE", global = true)]
    config: Option<PathBuf>,

    /// Who is acting, for the audit log [default: $USER].
    #[arg(long, value_name = "NAME", global = true)]
    by: Option<String>,
}

impl StoreArgs {
    fn config(&self) -> Result<PipelineConfig> {
        match &self.config {
            Some(path) => Ok(PipelineConfig::from_file(path)?),
            None => Ok(PipelineConfig::default()),
        }
    }

    fn open(&self, config: &PipelineConfig) -> Result<Arc<dyn ModelStore>> {
        Ok(open_store(&config.models, self.store.as_deref())?)
    }

    fn actor(&self, why: &str) -> Actor {
        let who = self
            .by
            .clone()
            .or_else(|| std::env::var("USER").ok())
            .unwrap_or_else(|| "aiops".to_owned());
        Actor::new(who, why)
    }
}

/// Arguments of `aiops models`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    aiops models list\n  \
    aiops models activate default-v3 --reason 'retrained after the deploy'\n  \
    aiops models rollback default --reason 'too many alerts'\n  \
    aiops models diff default-v2 default-v3\n  \
    aiops models audit")]
pub struct ModelsArgs {
    #[command(flatten)]
    store: StoreArgs,

    #[command(subcommand)]
    command: ModelsCommand,
}

#[derive(Debug, Subcommand)]
enum ModelsCommand {
    /// Every version, oldest first; `*` marks the active ones.
    List {
        /// Only this template's versions.
        #[arg(long, short = 't')]
        template: Option<String>,
    },
    /// One version in full (JSON).
    Show {
        /// The version id (`default-v3`).
        id: String,
    },
    /// What differs between two versions' parameters.
    Diff {
        /// One version.
        left: String,
        /// The other.
        right: String,
    },
    /// Make a version the active one of its template; running pipelines swap to it.
    Activate {
        /// The version id.
        id: String,
        /// Why, for the audit log.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Go back to the version active before the current one (or to --to).
    Rollback {
        /// The template.
        template: String,
        /// The tenant, for a tenant's own version.
        #[arg(long)]
        tenant: Option<String>,
        /// Go back to this version instead of the previous one.
        #[arg(long, value_name = "ID")]
        to: Option<String>,
        /// Why, for the audit log.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Delete a version that is not active.
    Delete {
        /// The version id.
        id: String,
        /// Why, for the audit log.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// The audit log: who did what to which version, when and why.
    Audit {
        /// Print JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(args: ModelsArgs) -> Result<()> {
    let config = args.store.config()?;
    let store = args.store.open(&config)?;
    let active = store.active()?;
    let is_active = |v: &ModelVersion| active.get(&v.scope) == Some(&v.id);
    let mut out = String::new();
    macro_rules! say {
        ($($arg:tt)*) => {{
            out.push_str(&format!($($arg)*));
            out.push('\n');
        }};
    }
    match args.command {
        ModelsCommand::List { template } => {
            let versions = store.list(template.as_deref())?;
            if versions.is_empty() {
                say!("no versions yet: `aiops train --template NAME --input FILE` makes one");
            }
            say!(
                "  {:<24} {:<20} {:<10} {:>8} {:>8} {:>10}  note",
                "id",
                "created",
                "by",
                "series",
                "points",
                "flag/1000"
            );
            for v in &versions {
                let training = v.training.as_ref();
                say!(
                    "{} {:<24} {:<20} {:<10} {:>8} {:>8} {:>10}  {}",
                    if is_active(v) { '*' } else { ' ' },
                    v.id,
                    &format_rfc3339(v.created_at)[..19],
                    v.created_by,
                    training.map_or(0, |t| t.series),
                    training.map_or(0, |t| t.training_points + t.evaluation_points),
                    v.figures
                        .get("flagged_per_1000")
                        .map_or("-".to_owned(), |f| format!("{f:.2}")),
                    v.note
                );
            }
        }
        ModelsCommand::Show { id } => {
            let version = store.get(&id)?;
            let mut value = serde_json::to_value(&version).unwrap_or_default();
            value["active"] = serde_json::Value::Bool(is_active(&version));
            say!(
                "{}",
                serde_json::to_string_pretty(&value).unwrap_or_default()
            );
        }
        ModelsCommand::Diff { left, right } => {
            let (a, b) = (store.get(&left)?, store.get(&right)?);
            let diff = diff_parameters(&a.parameters, &b.parameters);
            if diff.is_empty() {
                say!("{left} and {right} have the same parameters");
            }
            for (path, l, r) in diff {
                say!("{path}: {l} -> {r}");
            }
        }
        ModelsCommand::Activate { id, reason } => {
            store.activate(&id, &args.store.actor(&reason))?;
            say!("{id} is active");
        }
        ModelsCommand::Rollback {
            template,
            tenant,
            to,
            reason,
        } => {
            let scope = ModelScope { template, tenant };
            let version = store.rollback(&scope, to.as_deref(), &args.store.actor(&reason))?;
            say!("{scope}: {} is active again", version.id);
        }
        ModelsCommand::Delete { id, reason } => {
            store.delete(&id, &args.store.actor(&reason))?;
            say!("{id} deleted");
        }
        ModelsCommand::Audit { json } => {
            for entry in store.audit()? {
                if json {
                    say!("{}", serde_json::to_string(&entry).unwrap_or_default());
                    continue;
                }
                let previous = entry
                    .previous
                    .as_deref()
                    .map_or(String::new(), |p| format!(" (was {p})"));
                say!(
                    "{:>5} {} {:<10} {:<8} {}{}  {}",
                    entry.seq,
                    &format_rfc3339(entry.at)[..19],
                    entry.who,
                    entry.action,
                    entry.model,
                    previous,
                    entry.why
                );
            }
        }
    }
    emit(&out)
}

/// When a trained version becomes active.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Activation {
    /// If it beats the active version on the held-back tail (or none is active).
    Auto,
    /// Always.
    Always,
    /// Never: register only.
    Never,
}

/// Arguments of `aiops train`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    aiops train --template default --input last-week.jsonl\n  \
    aiops train -t latency -i metrics.lp --from 2026-11-20T00:00:00Z --to 2026-11-27T00:00:00Z\n  \
    aiops train -t default --topic metrics --brokers kafka:9092 --lookback 7d --every 1d")]
pub struct TrainArgs {
    /// The template to train (its name in the configuration, or `default`).
    #[arg(long, short = 't')]
    template: String,

    /// The history to train on.
    #[command(flatten)]
    history: HistoryArgs,

    /// Train on the stretch ending now and this long (`7d`, `12h`); with --every, each round.
    #[arg(long, value_parser = humantime::parse_duration, conflicts_with = "from")]
    lookback: Option<std::time::Duration>,

    /// Keep training on this schedule (`1d`, `6h`) until stopped, each round on the last
    /// --lookback of history.
    #[arg(long, value_parser = humantime::parse_duration, requires = "lookback")]
    every: Option<std::time::Duration>,

    /// Only points at or after this time (RFC 3339 or milliseconds since the epoch).
    #[arg(long)]
    from: Option<String>,

    /// Only points at or before this time.
    #[arg(long)]
    to: Option<String>,

    /// Fraction of each series' points held back to evaluate the version.
    #[arg(long, default_value_t = 0.2)]
    holdout: f64,

    /// When the new version becomes active.
    #[arg(long, value_enum, default_value_t = Activation::Auto)]
    activate: Activation,

    /// A note stored with the version.
    #[arg(long, default_value = "")]
    note: String,

    /// Train a version for this tenant only (its series alone; it runs for that tenant, before
    /// the template's version for everyone).
    #[arg(long)]
    tenant: Option<String>,

    #[command(flatten)]
    store: StoreArgs,
}

pub fn run_train(args: TrainArgs) -> Result<()> {
    let Some(every) = args.every else {
        return train_once(&args);
    };
    let stop = super::stop_on_ctrl_c();
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        // A failed round is reported and the schedule goes on: the next may find the broker
        // back or new data in the file.
        if let Err(error) = train_once(&args) {
            note!("aiops train: {error}");
        }
        let next = std::time::Instant::now() + every;
        while std::time::Instant::now() < next && !stop.load(std::sync::atomic::Ordering::Relaxed) {
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }
    Ok(())
}

/// The history to train on, and how it is named in the version's training range.
fn read_history(
    args: &TrainArgs,
    config: &PipelineConfig,
    from: Option<TimestampMs>,
    to: Option<TimestampMs>,
) -> Result<(Vec<aiops_schemas::MetricPoint>, String)> {
    let history = &args.history;
    if let Some(input) = &history.input {
        let source = FileSource::new(input, history.format())?;
        let (points, rejected) = source.read_points(&config.parse)?;
        note!(
            "read {} points from {} ({rejected} records rejected)",
            points.len(),
            input.display()
        );
        return Ok((points, input.display().to_string()));
    }
    let Some(topic) = &history.topic else {
        return Err(Error::Usage("give --input FILE or --topic TOPIC".into()));
    };
    read_topic(history, config, topic, from, to)
}

#[cfg(feature = "kafka")]
fn read_topic(
    history: &HistoryArgs,
    config: &PipelineConfig,
    topic: &str,
    from: Option<TimestampMs>,
    to: Option<TimestampMs>,
) -> Result<(Vec<aiops_schemas::MetricPoint>, String)> {
    let (kafka, topic_config) = history.kafka(config, topic)?;
    let read = aiops_connectors::source::kafka_range::read_range(
        &kafka,
        &topic_config,
        &config.parse,
        from,
        to,
        std::time::Duration::from_secs(30),
    )?;
    note!(
        "read {} messages of topic {topic} ({} rejected){}: {} points in the range",
        read.messages,
        read.rejected,
        if read.seeked_by_time {
            ", from the offsets of --from"
        } else {
            ", from each partition's start"
        },
        read.points.len()
    );
    Ok((read.points, format!("kafka:{topic}")))
}

#[cfg(not(feature = "kafka"))]
fn read_topic(
    _: &HistoryArgs,
    _: &PipelineConfig,
    _: &str,
    _: Option<TimestampMs>,
    _: Option<TimestampMs>,
) -> Result<(Vec<aiops_schemas::MetricPoint>, String)> {
    super::history::no_kafka()
}

fn train_once(args: &TrainArgs) -> Result<()> {
    let config = args.store.config()?;
    let store = args.store.open(&config)?;
    let templates: Arc<TemplateSet> = config.template_set()?;
    let template: Template = templates
        .templates()
        .iter()
        .find(|t| t.name == args.template)
        .cloned()
        .ok_or_else(|| {
            let known: Vec<&str> = templates
                .templates()
                .iter()
                .map(|t| t.name.as_str())
                .collect();
            Error::Usage(format!(
                "no template {:?}; known: {}",
                args.template,
                known.join(", ")
            ))
        })?;
    let (from, to) = match args.lookback {
        Some(lookback) => {
            let to = match &args.to {
                Some(to) => parse_time(to)?,
                None => aiops_pipeline::system_now(),
            };
            (Some(to - lookback.as_millis() as TimestampMs), Some(to))
        }
        None => (
            args.from.as_deref().map(parse_time).transpose()?,
            args.to.as_deref().map(parse_time).transpose()?,
        ),
    };
    let (points, source) = read_history(args, &config, from, to)?;
    let points: Vec<_> = points
        .into_iter()
        .filter(|p| from.is_none_or(|f| p.timestamp >= f) && to.is_none_or(|t| p.timestamp <= t))
        .filter(|p| {
            args.tenant
                .as_deref()
                .is_none_or(|t| p.series.tenant() == t)
        })
        .filter(|p| {
            templates
                .select(&p.series)
                .is_some_and(|(_, t)| t.name == template.name)
        })
        .collect();
    note!(
        "{} points in range for template {:?}",
        points.len(),
        template.name
    );

    let scope = ModelScope {
        template: template.name.clone(),
        tenant: args.tenant.clone(),
    };
    let incumbent = match store.active()?.get(&scope) {
        Some(id) => {
            let version = store.get(id)?;
            let artifact = ModelArtifact::decode(id, &store.artifact(id)?)?;
            Some((version, artifact))
        }
        None => None,
    };
    let incumbent_template = incumbent.as_ref().map(|(v, _)| v.template());
    let mut trained = train(
        &template,
        templates.registry(),
        points,
        &source,
        TrainOptions {
            holdout: args.holdout,
            ..TrainOptions::default()
        },
        incumbent
            .as_ref()
            .zip(incumbent_template.as_ref())
            .map(|((_, artifact), template)| Incumbent { template, artifact }),
    )?;
    // Series the range does not cover keep what the active version learnt for them.
    if let Some((version, artifact)) = &incumbent
        && diff_parameters(&version.parameters, &template).is_empty()
    {
        trained.artifact.carry_over(artifact);
    }
    let actor = args.store.actor("aiops train");
    let version = store.register(
        trained.new_model(scope, template, args.note.clone()),
        &trained.artifact.encode(),
        &actor,
    )?;
    let figures = &trained.evaluation;
    note!(
        "registered {}: {} series, {} training + {} evaluation points; on the held-back tail \
         {:.2} points per 1000 at warning or above, {} events",
        version.id,
        trained.training.series,
        trained.training.training_points,
        trained.training.evaluation_points,
        figures.flagged_per_1000(),
        figures.events
    );
    if let (Some((old, _)), Some(old_figures)) = (&incumbent, &trained.incumbent) {
        note!(
            "active {} on the same tail: {:.2} per 1000, {} events",
            old.id,
            old_figures.flagged_per_1000(),
            old_figures.events
        );
    }
    let activate = match args.activate {
        Activation::Always => true,
        Activation::Never => false,
        Activation::Auto => trained.beats_incumbent(),
    };
    if activate {
        store.activate(
            &version.id,
            &args.store.actor(&format!("trained on {source}")),
        )?;
        emit(&format!("{} is active\n", version.id))
    } else {
        if args.activate == Activation::Auto {
            store.reject(
                &version.id,
                &args
                    .store
                    .actor("did not beat the active version on the held-back tail"),
            )?;
        }
        emit(&format!("{} registered, not activated\n", version.id))
    }
}
