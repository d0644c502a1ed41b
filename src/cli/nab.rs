//! `aiops nab`: run detectors over the Numenta Anomaly Benchmark and score them by its rules.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use aiops_evaluation::nab::{
    self, Corpus, CostProfile, ProfileScore, ThresholdChoice,
    run::{run_corpus, sigma_of_unit, unit_score},
};
use aiops_operators::{DetectorSpec, Registry, Template};
use aiops_pipeline::PipelineConfig;

use super::output::{count, emit};
use crate::error::{Error, Result};

/// Arguments of `aiops nab`: a run, unless a subcommand says otherwise.
#[derive(Debug, Args)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_help = "Examples:\n  \
    aiops nab --data ../shared/data/nab --out nab-results\n  \
    aiops nab --data ../shared/data/nab --out nab-results --detector seasonal\n  \
    aiops nab score --data ../shared/data/nab --results nab-results --detector ensemble\n  \
    aiops nab score --data ../shared/data/nab --results ../shared/data/nab/results \\\n    \
      --detector numenta --thresholds ../shared/data/nab/results/thresholds.json"
)]
pub struct NabArgs {
    #[command(subcommand)]
    command: Option<NabCommand>,

    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Subcommand)]
enum NabCommand {
    /// Run a detector over every corpus file and write NAB result files (the default).
    Run(RunArgs),
    /// Score result files in NAB's layout by NAB's rules.
    Score(ScoreArgs),
}

/// Arguments of `aiops nab run`.
#[derive(Debug, Args)]
struct RunArgs {
    /// The NAB corpus: the folder holding data/ and labels/combined_windows.json.
    #[arg(long, value_name = "DIR", required = true)]
    data: Option<PathBuf>,

    /// Where results go: <out>/<detector>/<category>/<detector>_<file>.csv.
    #[arg(long, value_name = "DIR", required = true)]
    out: Option<PathBuf>,

    /// A detector kind (alone), `ensemble` (the shipped default template), `light` (z-score
    /// and MAD), or the name of a template in --config.
    #[arg(long, default_value = "ensemble")]
    detector: String,

    /// TOML configuration whose templates --detector may name (see aiops.example.toml).
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,

    /// Only files whose path below data/ matches this glob (`realKnownCause/*`).
    #[arg(long, value_name = "GLOB")]
    files: Option<String>,

    /// Threads; each scores whole files.
    #[arg(long, short = 'w', default_value_t = super::default_workers())]
    workers: u16,

    /// Do not score the results after writing them.
    #[arg(long)]
    no_score: bool,
}

/// Arguments of `aiops nab score`.
#[derive(Debug, Args)]
struct ScoreArgs {
    /// The NAB corpus: the folder holding data/ and labels/combined_windows.json.
    #[arg(long, value_name = "DIR")]
    data: PathBuf,

    /// The results folder (holding <detector>/<category>/<detector>_<file>.csv).
    #[arg(long, value_name = "DIR")]
    results: PathBuf,

    /// The detector whose results are scored.
    #[arg(long, default_value = "ensemble")]
    detector: String,

    /// Use the thresholds in this file (NAB's thresholds.json format) instead of a sweep.
    #[arg(long, value_name = "FILE", conflicts_with = "threshold")]
    thresholds: Option<PathBuf>,

    /// Use this threshold for every profile instead of a sweep.
    #[arg(long)]
    threshold: Option<f64>,

    /// Cost profiles in NAB's profiles.json format [default: NAB's three].
    #[arg(long, value_name = "FILE")]
    profiles: Option<PathBuf>,

    /// Only files whose path below data/ matches this glob.
    #[arg(long, value_name = "GLOB")]
    files: Option<String>,

    /// Print the scores as JSON on standard output instead of tables.
    #[arg(long)]
    json: bool,
}

/// Runs `aiops nab`.
pub fn run(args: NabArgs) -> Result<()> {
    match args.command {
        Some(NabCommand::Run(run_args)) => run_detector(run_args),
        Some(NabCommand::Score(score_args)) => score(score_args),
        None => run_detector(args.run),
    }
}

fn open_corpus(data: &Path, files: Option<&str>) -> Result<Corpus> {
    let mut corpus = Corpus::open(data)?;
    if let Some(pattern) = files {
        corpus.retain_matching(pattern);
        if corpus.files().is_empty() {
            return Err(Error::Usage(format!(
                "no corpus file matches {pattern:?}; names look like realKnownCause/nyc_taxi.csv"
            )));
        }
    }
    Ok(corpus)
}

/// The template --detector names.
pub(crate) fn resolve_template(name: &str, config: Option<&Path>) -> Result<(Template, Registry)> {
    let config = match config {
        Some(path) => PipelineConfig::from_file(path)?,
        None => PipelineConfig::default(),
    };
    let set = config.template_set()?;
    let registry = set.registry().clone();
    if let Some(template) = set.templates().iter().find(|t| t.name == name) {
        return Ok((template.clone(), registry));
    }
    if name == "ensemble" {
        return Ok((Template::default(), registry));
    }
    if name == "light" {
        return Ok((Template::light(), registry));
    }
    if registry.kinds().iter().any(|k| k == name) {
        let template = Template {
            name: name.to_owned(),
            detectors: vec![DetectorSpec::new(name)],
            ..Template::default()
        };
        template
            .validate(&registry)
            .map_err(aiops_evaluation::Error::from)?;
        return Ok((template, registry));
    }
    Err(Error::Usage(format!(
        "--detector {name:?} is neither `ensemble` (the default template), `light`, a detector kind ({}), nor a template in the configuration",
        registry.kinds().join(", ")
    )))
}

fn run_detector(args: RunArgs) -> Result<()> {
    let (Some(data), Some(out)) = (args.data, args.out) else {
        return Err(Error::Usage("--data and --out are required".into()));
    };
    let corpus = open_corpus(&data, args.files.as_deref())?;
    let (template, registry) = resolve_template(&args.detector, args.config.as_deref())?;
    note!(
        "scoring {} files with {} ({} detector{}) on {} thread{}",
        corpus.files().len(),
        args.detector,
        template.detectors.len(),
        if template.detectors.len() == 1 {
            ""
        } else {
            "s"
        },
        args.workers,
        if args.workers == 1 { "" } else { "s" }
    );
    let summary = run_corpus(
        &corpus,
        &template,
        &registry,
        &args.detector,
        &out,
        usize::from(args.workers),
    )?;
    let per_core = summary.rows as f64 / summary.detector_time.as_secs_f64().max(1e-9);
    note!(
        "wrote {} rows to {} in {:.2} s; detectors ran at {} points/s per core",
        count(summary.rows as u64),
        out.join(&args.detector).display(),
        summary.elapsed.as_secs_f64(),
        count(per_core as u64)
    );
    if args.no_score {
        return Ok(());
    }
    let results = nab::load_results(&corpus, &out, &args.detector)?;
    let profiles = CostProfile::nab();
    let swept = nab::evaluate(&results, &profiles, &ThresholdChoice::Sweep)?;
    let shipped = unit_score(template.alert.warning);
    let fixed = nab::evaluate(&results, &profiles, &ThresholdChoice::Fixed(shipped))?;
    emit(&format!(
        "{}{}",
        table(&args.detector, "NAB sweep over the corpus", &swept),
        table(
            &args.detector,
            &format!(
                "fixed threshold: the template's warning level, {}σ",
                template.alert.warning
            ),
            &fixed,
        )
    ))
}

fn score(args: ScoreArgs) -> Result<()> {
    let corpus = open_corpus(&args.data, args.files.as_deref())?;
    let profiles = match &args.profiles {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Error::Usage(format!("cannot read {}: {e}", path.display())))?;
            CostProfile::from_nab_json(&text)
                .map_err(|e| Error::Usage(format!("{}: {e}", path.display())))?
        }
        None => CostProfile::nab(),
    };
    let (choice, how) = match (&args.thresholds, args.threshold) {
        (Some(path), _) => (
            ThresholdChoice::from_nab_thresholds(path, &args.detector)?,
            format!("thresholds from {}", path.display()),
        ),
        (None, Some(t)) => (
            ThresholdChoice::Fixed(t),
            format!("fixed threshold {t} (= {:.3}σ)", sigma_of_unit(t)),
        ),
        (None, None) => (
            ThresholdChoice::Sweep,
            "NAB sweep over the corpus".to_owned(),
        ),
    };
    let results = nab::load_results(&corpus, &args.results, &args.detector)?;
    let scores = nab::evaluate(&results, &profiles, &choice)?;
    let text = if args.json {
        format!("{}\n", scores_json(&args.detector, &how, &scores))
    } else {
        table(&args.detector, &how, &scores)
    };
    emit(&text)
}

fn format_normalized(normalized: Option<f64>) -> String {
    normalized.map_or_else(|| "—".to_owned(), |n| format!("{n:.2}"))
}

/// Scores per profile, then the first profile's per-category breakdown.
fn table(detector: &str, how: &str, scores: &[ProfileScore]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(out, "\n{detector}: {how}");
    let _ = writeln!(
        out,
        "  {:<20} {:>10} {:>8} {:>10} {:>9} {:>7}",
        "profile", "threshold", "score", "raw", "windows", "FP"
    );
    for score in scores {
        let t = &score.total.tally;
        let _ = writeln!(
            out,
            "  {:<20} {:>10.6} {:>8} {:>10.3} {:>9} {:>7}",
            score.profile.name,
            score.threshold,
            format_normalized(score.total.normalized),
            t.raw,
            format!("{}/{}", t.detected, t.windows),
            t.false_positives
        );
    }
    if let Some(first) = scores.first() {
        let _ = writeln!(out, "  per category ({}):", first.profile.name);
        for (category, part) in &first.categories {
            let t = &part.tally;
            let _ = writeln!(
                out,
                "    {:<22} {:>8} {:>10.3} {:>9} {:>7}",
                category,
                format_normalized(part.normalized),
                t.raw,
                format!("{}/{}", t.detected, t.windows),
                t.false_positives
            );
        }
    }
    out
}

fn scores_json(detector: &str, how: &str, scores: &[ProfileScore]) -> serde_json::Value {
    let tally = |t: &nab::Tally| {
        serde_json::json!({
            "raw": t.raw,
            "windows": t.windows,
            "detected": t.detected,
            "window_detections": t.window_detections,
            "false_positives": t.false_positives,
        })
    };
    serde_json::json!({
        "detector": detector,
        "thresholds": how,
        "profiles": scores.iter().map(|s| serde_json::json!({
            "profile": s.profile.name,
            "threshold": s.threshold,
            "normalized": s.total.normalized,
            "tally": tally(&s.total.tally),
            "categories": s.categories.iter().map(|(name, part)| (name.clone(), serde_json::json!({
                "normalized": part.normalized,
                "tally": tally(&part.tally),
            }))).collect::<serde_json::Map<_, _>>(),
        })).collect::<Vec<_>>(),
    })
}
