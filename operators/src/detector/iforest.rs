//! The isolation-forest detector: how easily the recent shape of the series is told apart from
//! the shapes of its own history.
//!
//! Each point is described by engineered features of its last `window` values (w) and the
//! `4w` before: the value, its step from the previous one, its distance from the mean of the
//! window, the window's standard deviation and range, and the difference between the window's
//! mean and the long window's (the local level, jump, deviation, volatility and trend). Raw
//! shingles of values were tried first: axis-parallel cuts rarely isolate a shape whose every
//! value is ordinary, while a derived feature such as a volatility of zero is one cut away.
//!
//! An isolation forest (Liu, Ting and Zhou, 2008) is grown on feature vectors of points drawn
//! from the last `history` points: each tree splits a random subsample on random features at
//! random cut points until every vector is alone. A vector unlike its history is isolated in
//! few splits; the score is `2^(-E[h]/c(n))` over the trees, about 0.5 for ordinary points and
//! towards 1 for anomalies, written as the sigma-equivalent `20 · (s - 0.5)` (0.65 scores 3).
//!
//! Retraining never pauses the stream: one tree is replaced every `retrain_every / trees`
//! points by a tree grown on the current history, so the forest follows the series with a
//! bounded cost per point instead of a periodic full rebuild. The random numbers come from a
//! seeded generator, so the same points always give the same scores. The expected band is the
//! range of the values the newest tree was grown from.

use serde::{Deserialize, Serialize};

use aiops_schemas::Band;

use super::{Detector, Score, Snapshot};
use crate::error::{Error, Result};
use crate::features::{Features, Input};
use crate::rng::Rng;

/// Registry name.
pub const KIND: &str = "iforest";
const SNAPSHOT_VERSION: u16 = 1;
/// Longest window.
pub const MAX_WINDOW: usize = 64;
/// Features per point.
const WIDTH: usize = 6;
/// Marks a leaf in [`Node::feature`].
const LEAF: u8 = u8::MAX;

/// Parameters of the isolation-forest detector.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IForestConfig {
    /// The feature the windows are taken of.
    pub input: Input,
    /// Values in the short window (the long window is four times longer).
    pub window: usize,
    /// Trees in the forest.
    pub trees: usize,
    /// Shingles each tree is grown on (its depth limit is log2 of this).
    pub sample_size: usize,
    /// Points of history trees are grown from.
    pub history: usize,
    /// Points over which every tree is replaced once.
    pub retrain_every: usize,
    /// Points learnt before the first score (at least `sample_size + shingle`).
    pub warmup: usize,
    /// Seed of the random generator.
    pub seed: u64,
}

impl Default for IForestConfig {
    fn default() -> Self {
        IForestConfig {
            input: Input::Value,
            window: 8,
            trees: 32,
            sample_size: 64,
            history: 1024,
            retrain_every: 512,
            warmup: 256,
            seed: 0x5eed,
        }
    }
}

impl IForestConfig {
    /// Checks ranges.
    pub fn validate(&self) -> Result<()> {
        let fail = |message: String| Err(Error::config(KIND, message));
        if !(2..=MAX_WINDOW).contains(&self.window) {
            return fail(format!(
                "window must be 2 to {MAX_WINDOW} values, not {}",
                self.window
            ));
        }
        if !(1..=1024).contains(&self.trees) {
            return fail(format!("trees must be 1 to 1024, not {}", self.trees));
        }
        if !(4..=4096).contains(&self.sample_size) {
            return fail(format!(
                "sample_size must be 4 to 4096, not {}",
                self.sample_size
            ));
        }
        let needed = self.sample_size + self.span();
        if self.history < needed || self.history > 1 << 16 {
            return fail(format!(
                "history must hold at least sample_size + 4 × window ({needed}) points and at most 65536, not {}",
                self.history
            ));
        }
        if self.warmup < needed || self.warmup > self.history {
            return fail(format!(
                "warmup must be from sample_size + 4 × window ({needed}) to history ({}) points, not {}",
                self.history, self.warmup
            ));
        }
        if self.retrain_every < self.trees {
            return fail(format!(
                "retrain_every ({}) must be at least the number of trees ({})",
                self.retrain_every, self.trees
            ));
        }
        Ok(())
    }
}

impl IForestConfig {
    /// Values one feature vector is computed from.
    fn span(&self) -> usize {
        4 * self.window
    }
}

/// One node of a tree, in preorder: a split's left child follows it, `right` says where its
/// right child is. A leaf holds the expected path length of the shingles it still held.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Node {
    /// Split value, or a leaf's path-length adjustment.
    value: f32,
    /// Index of the right child.
    right: u16,
    /// Feature split on, or [`LEAF`].
    feature: u8,
}

/// The average path length of an unsuccessful search in a binary search tree of `n` keys:
/// the depth an isolation tree would still need to isolate one of `n` equal-looking shingles.
fn average_path(n: usize) -> f64 {
    match n {
        0 | 1 => 0.0,
        2 => 1.0,
        _ => {
            let n = n as f64;
            2.0 * ((n - 1.0).ln() + 0.577_215_664_901_532_9) - 2.0 * (n - 1.0) / n
        }
    }
}

/// What the detector has learnt about one series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ForestState {
    /// The last `history` values, oldest overwritten first.
    history: Vec<f32>,
    head: u32,
    count: u64,
    /// The trees, each a preorder node list (empty until grown).
    trees: Vec<Vec<Node>>,
    /// The tree replaced next.
    next_tree: u32,
    /// Points since a tree was last replaced.
    since_growth: u32,
    rng: Rng,
    /// The lowest and highest values of the last sample grown from: the expected band.
    low: f32,
    high: f32,
}

/// The isolation-forest detector for one series.
#[derive(Debug, Clone, PartialEq)]
pub struct IForest {
    config: IForestConfig,
    state: ForestState,
    depth_limit: usize,
    normalizer: f64,
}

impl IForest {
    /// A detector with no history.
    pub fn new(config: IForestConfig) -> Result<IForest> {
        config.validate()?;
        Ok(IForest {
            depth_limit: (config.sample_size as f64).log2().ceil() as usize,
            normalizer: average_path(config.sample_size),
            state: ForestState {
                history: vec![0.0; config.history],
                head: 0,
                count: 0,
                trees: vec![Vec::new(); config.trees],
                next_tree: 0,
                since_growth: 0,
                rng: Rng(config.seed),
                low: 0.0,
                high: 0.0,
            },
            config,
        })
    }

    /// The value `lag` points before the newest one in the history.
    fn back(&self, lag: usize) -> f32 {
        let len = self.state.history.len();
        self.state.history[(self.state.head as usize + len - 1 - lag) % len]
    }

    /// Grows the tree at `index` from the feature vectors of a fresh subsample of the history.
    fn grow(&mut self, index: usize) {
        let span = self.config.span();
        let held = (self.state.count as usize).min(self.config.history);
        let ends = held + 1 - span;
        let mut sample: Vec<f32> = Vec::with_capacity(self.config.sample_size * WIDTH);
        let (mut low, mut high) = (f32::INFINITY, f32::NEG_INFINITY);
        for _ in 0..self.config.sample_size {
            // The point `end` points back, with the span before it.
            let end = self.state.rng.below(ends);
            let vector = self.features_at(|lag| self.back(end + lag));
            low = low.min(vector[0]);
            high = high.max(vector[0]);
            sample.extend_from_slice(&vector);
        }
        self.state.low = low;
        self.state.high = high;
        let mut rows: Vec<u32> = (0..self.config.sample_size as u32).collect();
        let mut nodes = Vec::with_capacity(2 * self.config.sample_size);
        let mut rng = self.state.rng;
        grow_node(
            &sample,
            WIDTH,
            &mut rows,
            0,
            self.depth_limit,
            &mut nodes,
            &mut rng,
        );
        self.state.rng = rng;
        self.state.trees[index] = nodes;
    }

    /// The feature vector of a point, given its values by lag (0: the point itself).
    fn features_at(&self, value: impl Fn(usize) -> f32) -> [f32; WIDTH] {
        let w = self.config.window;
        let x = value(0);
        let (mut sum, mut squares, mut low, mut high) =
            (0.0f32, 0.0f32, f32::INFINITY, f32::NEG_INFINITY);
        for lag in 0..w {
            let v = value(lag);
            sum += v;
            squares += v * v;
            low = low.min(v);
            high = high.max(v);
        }
        let mean = sum / w as f32;
        let std = (squares / w as f32 - mean * mean).max(0.0).sqrt();
        let long_mean = (w..4 * w).map(&value).sum::<f32>() / (3 * w) as f32;
        [x, x - value(1), x - mean, std, high - low, mean - long_mean]
    }

    /// The mean path length of a feature vector over the grown trees.
    fn mean_path(&self, vector: &[f32; WIDTH]) -> Option<f64> {
        let mut total = 0.0;
        let mut grown = 0;
        for tree in self.state.trees.iter().filter(|t| !t.is_empty()) {
            let mut i = 0;
            let mut depth = 0.0;
            loop {
                let node = tree[i];
                if node.feature == LEAF {
                    total += depth + f64::from(node.value);
                    break;
                }
                depth += 1.0;
                i = if vector[node.feature as usize] < node.value {
                    i + 1
                } else {
                    node.right as usize
                };
            }
            grown += 1;
        }
        (grown > 0).then(|| total / f64::from(grown))
    }
}

/// Grows the subtree of `rows` at `depth` into `nodes`, in preorder.
fn grow_node(
    sample: &[f32],
    width: usize,
    rows: &mut [u32],
    depth: usize,
    limit: usize,
    nodes: &mut Vec<Node>,
    rng: &mut Rng,
) {
    let at = nodes.len();
    let leaf = |n: usize| Node {
        value: average_path(n) as f32,
        right: 0,
        feature: LEAF,
    };
    if rows.len() <= 1 || depth >= limit {
        nodes.push(leaf(rows.len()));
        return;
    }
    // A random feature that still varies among the rows; none: the rows are identical.
    let value = |row: u32, feature: usize| sample[row as usize * width + feature];
    let start = rng.below(width);
    let mut split = None;
    for offset in 0..width {
        let feature = (start + offset) % width;
        let (mut low, mut high) = (f32::INFINITY, f32::NEG_INFINITY);
        for &row in rows.iter() {
            let v = value(row, feature);
            low = low.min(v);
            high = high.max(v);
        }
        if high > low {
            let cut = low + (high - low) * rng.unit();
            split = Some((feature, cut.max(low).min(high)));
            break;
        }
    }
    let Some((feature, cut)) = split else {
        nodes.push(leaf(rows.len()));
        return;
    };
    // Partition: values below the cut to the left.
    let mut left = 0;
    for i in 0..rows.len() {
        if value(rows[i], feature) < cut {
            rows.swap(i, left);
            left += 1;
        }
    }
    if left == 0 || left == rows.len() {
        // The cut landed on the lowest value; nothing separates. Treat as a leaf.
        nodes.push(leaf(rows.len()));
        return;
    }
    nodes.push(Node {
        value: cut,
        right: 0,
        feature: feature as u8,
    });
    let (low_rows, high_rows) = rows.split_at_mut(left);
    grow_node(sample, width, low_rows, depth + 1, limit, nodes, rng);
    nodes[at].right = nodes.len() as u16;
    grow_node(sample, width, high_rows, depth + 1, limit, nodes, rng);
}

impl Detector for IForest {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn config(&self) -> serde_json::Value {
        serde_json::to_value(self.config).unwrap_or_default()
    }

    fn score(&self, features: &Features) -> Option<Score> {
        if (self.state.count as usize) < self.config.warmup {
            return None;
        }
        let x = features.get(self.config.input) as f32;
        // This point, then the history before it.
        let vector = self.features_at(|lag| if lag == 0 { x } else { self.back(lag - 1) });
        let path = self.mean_path(&vector)?;
        let s = (-path / self.normalizer).exp2();
        Some(Score {
            score: (20.0 * (s - 0.5)).max(0.0),
            expected: Band {
                lower: f64::from(self.state.low),
                upper: f64::from(self.state.high),
            },
        })
    }

    fn update(&mut self, features: &Features) {
        let x = features.get(self.config.input);
        if !x.is_finite() {
            return;
        }
        let len = self.state.history.len();
        let head = self.state.head as usize;
        self.state.history[head] = x as f32;
        self.state.head = ((head + 1) % len) as u32;
        self.state.count += 1;
        if (self.state.count as usize) < self.config.warmup {
            return;
        }
        if self.state.trees.iter().all(Vec::is_empty) {
            // First forest: grow every tree now, so scores start at full strength.
            for i in 0..self.config.trees {
                self.grow(i);
            }
            return;
        }
        self.state.since_growth += 1;
        let interval = (self.config.retrain_every / self.config.trees).max(1) as u32;
        if self.state.since_growth >= interval {
            self.state.since_growth = 0;
            let index = self.state.next_tree as usize;
            self.grow(index);
            self.state.next_tree = ((index + 1) % self.config.trees) as u32;
        }
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot::encode(KIND, SNAPSHOT_VERSION, &self.state)
    }

    fn restore(&mut self, snapshot: &Snapshot) -> Result<()> {
        let state: ForestState = snapshot.decode(KIND, SNAPSHOT_VERSION)?;
        let valid_tree = |tree: &Vec<Node>| {
            tree.iter().enumerate().all(|(i, node)| {
                node.feature == LEAF
                    || ((node.feature as usize) < WIDTH
                        && (node.right as usize) > i + 1
                        && (node.right as usize) < tree.len())
            }) && tree.last().is_none_or(|n| n.feature == LEAF)
        };
        let consistent = state.history.len() == self.config.history
            && (state.head as usize) < self.config.history
            && state.trees.len() == self.config.trees
            && (state.next_tree as usize) < self.config.trees
            && state.trees.iter().all(valid_tree);
        if !consistent {
            return Err(Error::SnapshotCorrupt {
                kind: KIND.into(),
                message: "the snapshot does not fit this detector's history or trees".into(),
            });
        }
        self.state = state;
        Ok(())
    }

    fn state_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.state.history.capacity() * 4
            + self.state.trees.capacity() * std::mem::size_of::<Vec<Node>>()
            + self
                .state
                .trees
                .iter()
                .map(|t| t.capacity() * std::mem::size_of::<Node>())
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wave(i: usize) -> f64 {
        (i as f64 * std::f64::consts::TAU / 24.0).sin() * 10.0 + ((i * 7919) % 11) as f64 / 11.0
    }

    fn trained(points: usize) -> IForest {
        let mut d = IForest::new(IForestConfig::default()).unwrap();
        for i in 0..points {
            d.update(&Features::first(i as i64, wave(i)));
        }
        d
    }

    #[test]
    fn average_path_matches_the_paper() {
        assert_eq!(average_path(1), 0.0);
        assert_eq!(average_path(2), 1.0);
        // c(256) ≈ 10.24 (Liu et al. use it to normalise with ψ = 256).
        assert!(
            (average_path(256) - 10.24).abs() < 0.01,
            "{}",
            average_path(256)
        );
    }

    #[test]
    fn a_broken_shape_scores_higher_than_the_usual_one() {
        let mut usual = trained(2000);
        let mut stuck = usual.clone();
        // One copy sees the wave go on; the other sees it stick near its top, a value it
        // reaches every cycle but never holds.
        for i in 2000..2007 {
            usual.update(&Features::first(i as i64, wave(i)));
            stuck.update(&Features::first(i as i64, 9.5));
        }
        let usual = usual
            .score(&Features::first(2007, wave(2007)))
            .unwrap()
            .score;
        let stuck = stuck.score(&Features::first(2007, 9.5)).unwrap().score;
        assert!(usual < 3.0, "usual {usual}");
        assert!(stuck > usual + 1.0, "stuck {stuck} vs usual {usual}");
    }

    #[test]
    fn scores_are_deterministic_and_snapshots_round_trip() {
        let a = trained(1500);
        let b = trained(1500);
        assert_eq!(a, b);
        let mut c = IForest::new(IForestConfig::default()).unwrap();
        c.restore(&a.snapshot()).unwrap();
        let f = Features::first(0, 3.0);
        assert_eq!(a.score(&f), c.score(&f));
        let mut corrupt = a.snapshot();
        corrupt.state.truncate(corrupt.state.len() / 2);
        assert!(c.restore(&corrupt).is_err());
    }

    #[test]
    fn warms_up_then_scores_and_keeps_trees_fresh() {
        let mut d = IForest::new(IForestConfig::default()).unwrap();
        for i in 0..255 {
            assert_eq!(d.observe(&Features::first(i, wave(i as usize))), None);
        }
        d.update(&Features::first(255, wave(255)));
        assert!(d.score(&Features::first(256, wave(256))).is_some());
        let before = d.state.trees.clone();
        for i in 256..256 + 512 {
            d.update(&Features::first(i as i64, wave(i)));
        }
        assert!(
            d.state.trees.iter().zip(&before).all(|(a, b)| a != b),
            "every tree was regrown within retrain_every points"
        );
    }

    #[test]
    fn invalid_parameters_are_rejected() {
        for config in [
            IForestConfig {
                window: 1,
                ..IForestConfig::default()
            },
            IForestConfig {
                history: 10,
                ..IForestConfig::default()
            },
            IForestConfig {
                warmup: 10,
                ..IForestConfig::default()
            },
            IForestConfig {
                retrain_every: 4,
                ..IForestConfig::default()
            },
        ] {
            assert!(IForest::new(config).is_err(), "{config:?}");
        }
    }
}
