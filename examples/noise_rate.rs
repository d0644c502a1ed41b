//! How often a template raises on pure noise: stationary Gaussian series, counted after a
//! warm-up, for the default template, the light one, each detector of the default on its own,
//! and the templates of a configuration file (e.g. benches/peers/variants.toml). Also the first
//! points of each series (young series). Issue 17 measures against this; the noise itself is
//! `aiops_evaluation::multi::noise`.
//!
//!   cargo run --release --example noise_rate -- [SERIES] [POINTS] [WARMUP] [CONFIG.toml] [SEEDS]
//!
//! SEEDS (default 1) runs that many noise seeds (1, 2, ...) and prints each seed's figure after
//! the warm-up beside their mean: one seed's figure varies by about a quarter between seeds.

use aiops_evaluation::multi::noise::{NoiseSpec, noise_rate};
use aiops_operators::{Registry, Template};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |i: usize, default: usize| -> usize {
        args.get(i)
            .filter(|a| !a.is_empty())
            .map_or(default, |a| a.parse().expect("a whole number"))
    };
    let spec = NoiseSpec {
        series: number(0, 200),
        points: number(1, 1_300),
        warmup: number(2, 300),
        ..NoiseSpec::default()
    };
    let config = args.get(3).filter(|a| !a.is_empty());
    let seeds = number(4, 1).max(1) as u64;
    let registry = Registry::builtin();
    let default = Template::default();
    let mut templates: Vec<(String, Template)> = vec![
        ("default".into(), default.clone()),
        ("light".into(), Template::light()),
    ];
    if let Some(path) = config {
        let config = aiops_pipeline::PipelineConfig::from_file(std::path::Path::new(path)).unwrap();
        for template in config.template_set().unwrap().templates() {
            templates.push((format!("{path}: {}", template.name), template.clone()));
        }
    }
    for (i, spec) in default.detectors.iter().enumerate() {
        let mut alone = default.clone();
        alone.detectors = vec![spec.clone()];
        templates.push((format!("default, only #{i} {}", spec.kind), alone));
    }
    println!(
        "{} series of N({}, {}) noise, {} points each; events per 1,000 points before and after point {}; seeds 1..={seeds}",
        spec.series, spec.level, spec.sigma, spec.points, spec.warmup
    );
    for (name, template) in &templates {
        let started = std::time::Instant::now();
        let rates: Vec<_> = (1..=seeds)
            .map(|seed| noise_rate(template, &registry, &NoiseSpec { seed, ..spec }).unwrap())
            .collect();
        let mean = |f: fn(&aiops_evaluation::multi::noise::NoiseRate) -> f64| {
            rates.iter().map(f).sum::<f64>() / rates.len() as f64
        };
        let each: Vec<String> = rates
            .iter()
            .map(|r| format!("{:.3}", r.per_thousand_after()))
            .collect();
        println!(
            "{name:<40} first {}: {:>6.2}/1000   after: {:>6.3}/1000   (per seed {}; {:.1} s)",
            spec.warmup,
            mean(|r| r.young_per_thousand()),
            mean(|r| r.per_thousand_after()),
            each.join(", "),
            started.elapsed().as_secs_f64()
        );
    }
}
