//! How often a template raises on pure noise: stationary Gaussian series, counted after a
//! warm-up, per detector of the default template on its own and all together, with the detector
//! that led each event. Also the first points of each series (young series), where most false
//! alarms of the default template fall (issue 17 measures against this).
//!
//!   cargo run --release --example noise_rate -- [SERIES] [POINTS] [WARMUP] [CONFIG.toml]
//!
//! With a configuration file, its templates are measured too (e.g. the `quiet` variant of
//! benches/peers/variants.toml).

use std::collections::BTreeMap;

use aiops_operators::{Registry, SeriesChain, Template};
use aiops_schemas::{Labels, Limits, MetricPoint, Series};

/// xorshift64* with Box-Muller: deterministic Gaussian noise without a dependency.
struct Noise(u64);

impl Noise {
    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        ((self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    fn gaussian(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

fn main() {
    let config = std::env::args().nth(4);
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .take(3)
        .map(|a| a.parse().unwrap())
        .collect();
    let series = *args.first().unwrap_or(&200);
    let points = *args.get(1).unwrap_or(&1_300);
    let warmup = *args.get(2).unwrap_or(&300);
    let registry = Registry::builtin();
    let default = Template::default();
    let mut templates: Vec<(String, Template)> = vec![
        ("default".into(), default.clone()),
        ("light".into(), Template::light()),
    ];
    if let Some(path) = config {
        let config =
            aiops_pipeline::PipelineConfig::from_file(std::path::Path::new(&path)).unwrap();
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
        "{series} series of N(100, 5) noise, {points} points each; events per 1,000 points before and after point {warmup}"
    );
    for (name, template) in &templates {
        let started = std::time::Instant::now();
        let (mut young, mut old) = (0u64, 0u64);
        let mut top: BTreeMap<String, u64> = BTreeMap::new();
        for s in 0..series {
            let identity = Series::new(
                "noise",
                "value",
                Labels::from_pairs([("s", s.to_string())]).unwrap(),
                &Limits::default(),
            )
            .unwrap();
            let identity = std::sync::Arc::new(identity);
            let mut chain = SeriesChain::new(template, &registry).unwrap();
            let mut noise =
                Noise(0x9E37_79B9_7F4A_7C15 ^ (s + 1).wrapping_mul(0xD1B5_4A32_D192_ED03));
            for i in 0..points {
                let point = MetricPoint {
                    series: identity.clone(),
                    timestamp: 1_700_000_000_000 + i as i64 * 60_000,
                    value: 100.0 + 5.0 * noise.gaussian(),
                };
                if let Some(step) = chain.step(template, &point)
                    && let Some(event) = step.event
                {
                    if i < warmup {
                        young += 1;
                    } else {
                        old += 1;
                    }
                    let leader = event
                        .contributions
                        .iter()
                        .max_by(|a, b| a.score.total_cmp(&b.score))
                        .map_or("?".to_owned(), |c| c.detector.clone());
                    *top.entry(leader).or_default() += 1;
                }
            }
        }
        let per_k = |n: u64, span: u64| n as f64 * 1000.0 / (series * span) as f64;
        println!(
            "{name:<32} first {warmup}: {:>6.2}/1000   after: {:>6.3}/1000   ({young} + {old} events; leaders {top:?}; {:.1} s)",
            per_k(young, warmup),
            per_k(old, points - warmup),
            started.elapsed().as_secs_f64()
        );
    }
}
