//! `aiops eval`: detection quality over several labelled corpora in one run — NAB, corpora
//! fetched by `scripts/fetch-corpora`, a generated corpus of young series — for the shipped
//! templates, each detector alone, the rolling z-score reference and peers' score files.

use std::path::PathBuf;

use clap::Args;

use aiops_evaluation::multi::{self, Cell, CorpusRun, Entry, LabelledCorpus, labelled, young};
use aiops_evaluation::nab::Corpus;

use super::emit;
use crate::error::{Error, Result};

const AFTER_HELP: &str = "\
Examples:
  aiops eval --nab ../shared/data/nab --corpora target/corpora
  aiops eval --young 200 --entries default,light,range --json
  aiops eval --nab ../shared/data/nab --corpora target/corpora --export target/eval/corpora
  benches/peers/corpora target/eval/corpora target/eval/peers
  aiops eval --nab ../shared/data/nab --corpora target/corpora --peers target/eval/peers";

/// Arguments of `aiops eval`.
#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub struct EvalArgs {
    /// The NAB corpus (the folder holding data/ and labels/).
    #[arg(long, value_name = "DIR")]
    nab: Option<PathBuf>,

    /// Labelled corpora: one sub-folder per corpus of <series>.csv files with the header
    /// timestamp,value,label (what scripts/fetch-corpora writes).
    #[arg(long, value_name = "DIR")]
    corpora: Option<PathBuf>,

    /// Young series to generate (0: none).
    #[arg(long, default_value_t = 200)]
    young: usize,

    /// Seed of the generated young series.
    #[arg(long, default_value_t = 17)]
    seed: u64,

    /// What to evaluate, comma-separated: `default`, `light`, a detector kind alone (calibrated
    /// as in the default template), a template of --config, `zscore-100` (the rolling z-score
    /// reference), `ceiling` (the young corpus's ceiling: each point's surprise under the law
    /// the generator drew the healthy point from), `ceiling-3` (the same, pooling the evidence
    /// of up to the last 3 points; at most 20).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "default,light,range,seasonal,iforest,sequence,lstm,zscore,mad,zscore-100"
    )]
    entries: Vec<String>,

    /// Peers' score files: <dir>/<peer>/<corpus>/<series>.csv (benches/peers/corpora writes
    /// them); every peer folder becomes an entry.
    #[arg(long, value_name = "DIR")]
    peers: Option<PathBuf>,

    /// TOML configuration whose templates --entries may name.
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,

    /// Write every corpus in the labelled layout here (for peers to read) and stop.
    #[arg(long, value_name = "DIR")]
    export: Option<PathBuf>,

    /// Also write every entry's scores here in the peers' layout
    /// (<dir>/<entry>/<corpus>/<series>.csv), for a closer look.
    #[arg(long, value_name = "DIR")]
    scores_out: Option<PathBuf>,

    /// Threads; each scores whole series (points/s is per core: time summed over threads).
    #[arg(long, short = 'w', default_value_t = super::default_workers())]
    workers: u16,

    /// Print every cell as JSON instead of tables.
    #[arg(long)]
    json: bool,
}

/// Runs `aiops eval`.
pub fn run(args: EvalArgs) -> Result<()> {
    let corpora = load_corpora(&args)?;
    if corpora.is_empty() {
        return Err(Error::Usage(
            "no corpus to evaluate on: give --nab, --corpora or --young".into(),
        ));
    }
    if let Some(dir) = &args.export {
        for corpus in &corpora {
            labelled::write_corpus(dir, corpus)?;
        }
        emit(&format!(
            "wrote {} corpora ({} series) to {}\n",
            corpora.len(),
            corpora.iter().map(|c| c.series.len()).sum::<usize>(),
            dir.display()
        ))?;
        return Ok(());
    }
    let entries = resolve_entries(&args)?;
    let mut cells: Vec<Cell> = Vec::new();
    for entry in &entries {
        let runs: Vec<Option<CorpusRun>> = corpora
            .iter()
            .map(|corpus| multi::run(entry, corpus, usize::from(args.workers)))
            .collect::<std::result::Result<_, _>>()?;
        if let Some(dir) = &args.scores_out {
            for (corpus, run) in corpora.iter().zip(&runs) {
                if let Some(run) = run {
                    multi::write_scores(&dir.join(entry.label()), corpus, run)?;
                }
            }
        }
        let entry_cells = multi::cells(&entry.label(), &corpora, &runs);
        if !args.json {
            tracing::info!(entry = %entry.label(), "evaluated");
        }
        cells.extend(entry_cells);
    }
    if args.json {
        let text = serde_json::to_string_pretty(&cells).unwrap_or_default();
        return emit(&format!("{text}\n"));
    }
    emit(&table(&corpora, &cells))
}

fn load_corpora(args: &EvalArgs) -> Result<Vec<LabelledCorpus>> {
    let mut corpora = Vec::new();
    if let Some(dir) = &args.nab {
        let corpus = Corpus::open(dir)?;
        corpora.push(labelled::from_nab(&corpus)?);
    }
    if let Some(dir) = &args.corpora {
        corpora.extend(labelled::read_corpora(dir)?);
    }
    if args.young > 0 {
        corpora.push(young::generate(args.young, args.seed));
    }
    Ok(corpora)
}

fn resolve_entries(args: &EvalArgs) -> Result<Vec<Entry>> {
    let mut entries = Vec::new();
    for name in &args.entries {
        let name = name.trim();
        if let Some(window) = name.strip_prefix("zscore-") {
            let window = window
                .parse()
                .map_err(|_| Error::Usage(format!("{name:?}: the window must be a number")))?;
            entries.push(Entry::RollingZScore { window });
            continue;
        }
        if let Some(pool) = name.strip_prefix("ceiling") {
            let most = young::MAX_POOL;
            let pool = match pool.strip_prefix('-') {
                None if pool.is_empty() => 1,
                Some(pool) => pool
                    .parse()
                    .ok()
                    .filter(|p| (1..=most).contains(p))
                    .ok_or_else(|| {
                        Error::Usage(format!("{name:?}: the points pooled must be 1 to {most}"))
                    })?,
                None => return Err(Error::Usage(format!("{name:?} is not an entry"))),
            };
            if args.young == 0 {
                return Err(Error::Usage(format!(
                    "{name:?} scores the generated young series: give --young more than 0"
                )));
            }
            entries.push(Entry::Ceiling {
                seed: args.seed,
                pool,
            });
            continue;
        }
        let lookup = if name == "default" { "ensemble" } else { name };
        if lookup == "lstm" && !cfg!(feature = "lstm") {
            continue;
        }
        let (template, registry) = super::nab::resolve_template(lookup, args.config.as_deref())?;
        entries.push(Entry::Template {
            label: name.to_owned(),
            template: Box::new(template),
            registry,
        });
    }
    if let Some(dir) = &args.peers {
        let mut peers: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|source| Error::Read {
                path: dir.display().to_string(),
                source,
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .collect();
        peers.sort();
        entries.extend(peers.into_iter().map(Entry::peer));
    }
    Ok(entries)
}

fn fmt(x: Option<f64>, digits: usize) -> String {
    x.filter(|x| x.is_finite())
        .map_or_else(|| "-".to_owned(), |x| format!("{x:.digits$}"))
}

fn table(corpora: &[LabelledCorpus], cells: &[Cell]) -> String {
    let mut out = String::new();
    for corpus in corpora {
        let labelled: usize = corpus
            .series
            .iter()
            .map(|s| s.labels.iter().filter(|&&l| l).count())
            .sum();
        out.push_str(&format!(
            "\n{}: {} series, {} points, {:.1} % labelled\n",
            corpus.name,
            corpus.series.len(),
            corpus.points(),
            100.0 * labelled as f64 / corpus.points().max(1) as f64
        ));
        out.push_str(&format!(
            "{:<24} {:>6} {:>6} {:>6} {:>8} {:>7} {:>6} {:>7} {:>7} {:>8} {:>6} {:>10}\n",
            "entry",
            "F1",
            "prec",
            "recall",
            "FA/1k",
            "delay",
            "LOO",
            "ev F1",
            "ev rec",
            "ev FA/1k",
            "NAB",
            "points/s"
        ));
        for cell in cells.iter().filter(|c| c.corpus == corpus.name) {
            out.push_str(&format!(
                "{:<24} {:>6.3} {:>6.3} {:>6.3} {:>8.2} {:>7} {:>6} {:>7} {:>7} {:>8} {:>6} {:>10}\n",
                cell.entry,
                cell.f1,
                cell.precision,
                cell.recall,
                cell.false_alarms_per_1000,
                fmt(cell.delay, 1),
                fmt(cell.f1_leave_one_out, 3),
                fmt(cell.events_f1, 3),
                fmt(cell.events_recall, 3),
                fmt(cell.events_false_per_1000, 2),
                fmt(cell.nab_standard, 2),
                cell.points_per_second
                    .map_or_else(|| "-".to_owned(), |p| super::output::count(p as u64)),
            ));
        }
    }
    out.push_str(
        "\nF1: composite F1 (incident recall, point precision; alarm within 3 points after counts) at the \
threshold swept over that corpus; FA/1k: false alarms per 1,000 anomaly-free points there; delay: \
points from an incident's start to its first alarm; LOO: F1 at the threshold chosen on every other \
corpus; ev: the shipped alert policy's events; NAB: standard profile, swept.\n",
    );
    out
}
