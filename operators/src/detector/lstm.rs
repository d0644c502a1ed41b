//! The LSTM detector: how far a value lands from what a small recurrent network, trained on the
//! series' own recent history, predicted from the values before it.
//!
//! A one-layer LSTM with `hidden` units reads the last `steps` values (standardized by the mean
//! and deviation of the history it was trained on) and predicts the next one. The score is the
//! prediction error in units of the recent errors' mean absolute size (times √(π/2), a standard
//! deviation for normal errors), so the detector learns shapes a level or seasonal model cannot
//! express — ramps, bursts with a typical decay, alternations — and is surprised by breaks in
//! them.
//!
//! **Training** uses candle on the CPU: truncated backpropagation through the `steps` values of
//! random windows from the last `history` points, mean squared error, Adam. It never pauses the
//! stream: one optimizer step runs per incoming point while a training is under way, and the
//! network trained so far keeps scoring until the new one is ready; every `retrain_every`
//! points a refresh starts from the current weights on the current history. **Scoring** does not
//! touch candle: the trained weights are copied out and the forward pass is a few hundred
//! multiply-adds in plain Rust, so a point costs microseconds. Weights start from a seeded
//! generator, so the same points give the same scores.

use candle_core::{DType, Device, Tensor, Var};
use serde::{Deserialize, Serialize};

use aiops_schemas::Band;

use super::{Detector, Score, Snapshot, WeightTensor};
use crate::error::{Error, Result};
use crate::features::{Features, Input};
use crate::params;
use crate::rng::Rng;

/// Registry name.
pub const KIND: &str = "lstm";
const SNAPSHOT_VERSION: u16 = 1;
/// Mean absolute deviation × this estimates σ for normal data (√(π/2)).
const MEAN_AD_TO_SIGMA: f64 = 1.253_314_137_315_500_3;
/// Standardized values are clipped to this, so one spike cannot blow up a training step.
const CLIP: f32 = 8.0;

/// Parameters of the LSTM detector.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LstmConfig {
    /// The feature predicted.
    pub input: Input,
    /// LSTM units.
    pub hidden: usize,
    /// Values the network reads before predicting.
    pub steps: usize,
    /// Points of history trained on.
    pub history: usize,
    /// Points before the first training starts.
    pub warmup: usize,
    /// Points between the starts of refreshes.
    pub retrain_every: usize,
    /// Optimizer steps of the first training.
    pub first_iterations: u32,
    /// Optimizer steps of a refresh.
    pub refresh_iterations: u32,
    /// Windows per optimizer step.
    pub batch: usize,
    /// Adam's learning rate.
    pub learning_rate: f64,
    /// Smoothing of the errors' mean absolute size.
    pub error_alpha: f64,
    /// Seed of the weight initialization and window sampling.
    pub seed: u64,
}

impl Default for LstmConfig {
    fn default() -> Self {
        LstmConfig {
            input: Input::Value,
            hidden: 8,
            steps: 8,
            history: 512,
            warmup: 256,
            retrain_every: 5000,
            first_iterations: 60,
            refresh_iterations: 20,
            batch: 16,
            learning_rate: 0.02,
            error_alpha: 0.02,
            seed: 0x15_7a,
        }
    }
}

impl LstmConfig {
    /// Checks ranges.
    pub fn validate(&self) -> Result<()> {
        let fail = |message: String| Err(Error::config(KIND, message));
        if !(1..=64).contains(&self.hidden) {
            return fail(format!("hidden must be 1 to 64 units, not {}", self.hidden));
        }
        if !(1..=64).contains(&self.steps) {
            return fail(format!("steps must be 1 to 64, not {}", self.steps));
        }
        if self.history < 2 * (self.steps + 1) || self.history > 1 << 16 {
            return fail(format!(
                "history must be 2 × (steps + 1) = {} to 65536 points, not {}",
                2 * (self.steps + 1),
                self.history
            ));
        }
        if self.warmup < 2 * (self.steps + 1) || self.warmup > self.history {
            return fail(format!(
                "warmup must be from 2 × (steps + 1) = {} to history ({}) points, not {}",
                2 * (self.steps + 1),
                self.history,
                self.warmup
            ));
        }
        if self.retrain_every == 0 || self.batch == 0 || self.first_iterations == 0 {
            return fail("retrain_every, batch and first_iterations must be at least 1".into());
        }
        params::positive(KIND, &[("learning_rate", self.learning_rate)])?;
        params::alpha(KIND, self.error_alpha)
    }

    fn weight_rows(&self) -> usize {
        1 + self.hidden
    }

    fn gates(&self) -> usize {
        4 * self.hidden
    }

    /// Parameters in one flat vector: gate weights, gate biases, output weights, output bias.
    fn parameter_count(&self) -> usize {
        self.weight_rows() * self.gates() + self.gates() + self.hidden + 1
    }
}

/// A trained network and the standardization it was trained with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Network {
    parameters: Vec<f32>,
    mean: f32,
    std: f32,
}

/// A training under way: the parameters so far, Adam's moments, steps left.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Training {
    network: Network,
    first_moment: Vec<f32>,
    second_moment: Vec<f32>,
    step: u32,
    left: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct LstmState {
    /// The last `history` values, oldest overwritten first.
    history: Vec<f32>,
    head: u32,
    count: u64,
    network: Option<Network>,
    training: Option<Training>,
    /// Points since the last training started.
    since_training: u64,
    /// Exponentially weighted mean absolute prediction error, and how many errors it holds.
    error: f64,
    errors: u32,
    rng: Rng,
    /// The prediction for the next point, made once when the previous point was learnt so
    /// that scoring and learning a point run the network once between them. Derived from the
    /// rest, so not part of snapshots: restore recomputes it.
    #[serde(skip)]
    prediction: Option<f64>,
}

/// The LSTM detector for one series.
#[derive(Debug, Clone, PartialEq)]
pub struct Lstm {
    config: LstmConfig,
    state: LstmState,
}

impl Lstm {
    /// A detector with no history.
    pub fn new(config: LstmConfig) -> Result<Lstm> {
        config.validate()?;
        Ok(Lstm {
            state: LstmState {
                history: vec![0.0; config.history],
                head: 0,
                count: 0,
                network: None,
                training: None,
                since_training: 0,
                error: 0.0,
                errors: 0,
                rng: Rng(config.seed),
                prediction: None,
            },
            config,
        })
    }

    /// The value `lag` points before the newest one.
    fn back(&self, lag: usize) -> f32 {
        let len = self.state.history.len();
        self.state.history[(self.state.head as usize + len - 1 - lag) % len]
    }

    fn held(&self) -> usize {
        (self.state.count as usize).min(self.config.history)
    }

    /// Whether the first training has finished.
    pub fn is_trained(&self) -> bool {
        self.state.network.is_some()
    }

    /// The prediction for the next point from the newest `steps` values.
    fn predict(&self, network: &Network) -> f64 {
        let steps = self.config.steps;
        let mut inputs = [0f32; 64];
        for (k, input) in inputs[..steps].iter_mut().enumerate() {
            *input = standardize(self.back(steps - 1 - k), network);
        }
        let y = forward(&self.config, &network.parameters, &inputs[..steps]);
        f64::from(y) * f64::from(network.std) + f64::from(network.mean)
    }

    /// The prediction for the next point: the one made after the last update, or (should that
    /// be missing) a fresh one.
    fn next_prediction(&self, network: &Network) -> f64 {
        self.state
            .prediction
            .unwrap_or_else(|| self.predict(network))
    }

    /// Remembers the prediction for the next point after the history or the network changed.
    fn refresh_prediction(&mut self) {
        self.state.prediction = self.state.network.as_ref().map(|n| self.predict(n));
    }

    fn sigma(&self, network: &Network) -> f64 {
        // Until errors are known, a tenth of the trained deviation stands in.
        let floor = 1e-6
            * f64::from(network.std)
                .max(f64::from(network.mean.abs()))
                .max(1e-9);
        if self.state.errors == 0 {
            return (0.1 * f64::from(network.std)).max(floor);
        }
        (self.state.error * MEAN_AD_TO_SIGMA).max(floor)
    }

    /// Learns one finite value: the error of the prediction made for it, the history, and a
    /// training step when one is due.
    fn learn(&mut self, x: f64) {
        // Learn the error of the prediction made for this point, clipped at 4 sigmas.
        if let Some(network) = &self.state.network {
            let error = (x - self.next_prediction(network)).abs();
            let limit = 4.0 * self.sigma(network);
            let s = &mut self.state;
            let alpha = self.config.error_alpha.max(1.0 / f64::from(s.errors + 1));
            s.error += alpha * (error.min(limit) - s.error);
            s.errors = s.errors.saturating_add(1);
        }
        let len = self.state.history.len();
        let head = self.state.head as usize;
        self.state.history[head] = x as f32;
        self.state.head = ((head + 1) % len) as u32;
        self.state.count += 1;
        self.state.since_training += 1;
        if self.state.training.is_some() {
            self.train_step();
            return;
        }
        let held = self.held();
        if self.state.network.is_none() {
            if held >= self.config.warmup {
                self.start_training(None, self.config.first_iterations);
                self.train_step();
            }
        } else if self.state.since_training >= self.config.retrain_every as u64 {
            let start = self.state.network.clone();
            self.start_training(start, self.config.refresh_iterations.max(1));
            self.train_step();
        }
    }

    /// Starts a training from `start` (fresh weights when `None`) on the current history.
    fn start_training(&mut self, start: Option<Network>, iterations: u32) {
        let held = self.held();
        let values: Vec<f32> = (0..held).map(|lag| self.back(lag)).collect();
        let mean = values.iter().sum::<f32>() / held as f32;
        let variance = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / held as f32;
        let std = variance.sqrt().max(1e-6 * mean.abs().max(1e-6));
        let parameters = match start {
            Some(network) => network.parameters,
            None => self.initial_parameters(),
        };
        let count = parameters.len();
        self.state.training = Some(Training {
            network: Network {
                parameters,
                mean,
                std,
            },
            first_moment: vec![0.0; count],
            second_moment: vec![0.0; count],
            step: 0,
            left: iterations,
        });
        self.state.since_training = 0;
    }

    /// Glorot-uniform gate weights, forget-gate bias 1, small output weights.
    fn initial_parameters(&mut self) -> Vec<f32> {
        let c = &self.config;
        let (rows, gates, hidden) = (c.weight_rows(), c.gates(), c.hidden);
        let limit = (6.0 / (rows + gates) as f32).sqrt();
        let mut parameters = Vec::with_capacity(c.parameter_count());
        for _ in 0..rows * gates {
            parameters.push(limit * self.state.rng.symmetric());
        }
        for gate in 0..gates {
            parameters.push(if (hidden..2 * hidden).contains(&gate) {
                1.0
            } else {
                0.0
            });
        }
        let out_limit = (6.0 / (hidden + 1) as f32).sqrt();
        for _ in 0..hidden {
            parameters.push(out_limit * self.state.rng.symmetric());
        }
        parameters.push(0.0);
        parameters
    }

    /// One optimizer step of the training under way; finishes it when no steps are left.
    fn train_step(&mut self) {
        let Some(mut training) = self.state.training.take() else {
            return;
        };
        let (steps, batch) = (self.config.steps, self.config.batch);
        let held = self.held();
        // Windows of steps + 1 values, by the lag of their last value.
        let starts = held - steps;
        let mut windows = Vec::with_capacity(batch * (steps + 1));
        for _ in 0..batch {
            let end = self.state.rng.below(starts);
            for k in (0..=steps).rev() {
                windows.push(standardize(self.back(end + k), &training.network));
            }
        }
        match gradient(&self.config, &training.network.parameters, &windows) {
            Ok(gradient) => {
                adam(&self.config, &mut training, &gradient);
                training.left -= 1;
            }
            // A failed step (it should not happen on the CPU) abandons this training; the
            // network in service stays.
            Err(_) => return,
        }
        if training.left == 0 {
            self.state.network = Some(training.network);
        } else {
            self.state.training = Some(training);
        }
    }
}

fn standardize(value: f32, network: &Network) -> f32 {
    ((value - network.mean) / network.std).clamp(-CLIP, CLIP)
}

#[inline]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// The network's prediction from standardized inputs, in plain Rust: the same arithmetic the
/// training graph does.
fn forward(config: &LstmConfig, parameters: &[f32], inputs: &[f32]) -> f32 {
    let (rows, gates, hidden) = (config.weight_rows(), config.gates(), config.hidden);
    let weights = &parameters[..rows * gates];
    let biases = &parameters[rows * gates..rows * gates + gates];
    let output = &parameters[rows * gates + gates..rows * gates + gates + hidden];
    let output_bias = parameters[rows * gates + gates + hidden];
    let mut h = [0f32; 64];
    let mut c = [0f32; 64];
    let mut g = [0f32; 256];
    for &x in inputs {
        // g = [x, h] · W + b, with W stored row-major (rows × gates).
        g[..gates].copy_from_slice(biases);
        for (gate, slot) in g[..gates].iter_mut().enumerate() {
            *slot += x * weights[gate];
        }
        for (j, &hj) in h[..hidden].iter().enumerate() {
            let row = &weights[(1 + j) * gates..(2 + j) * gates];
            for (slot, w) in g[..gates].iter_mut().zip(row) {
                *slot += hj * w;
            }
        }
        for k in 0..hidden {
            let i = sigmoid(g[k]);
            let f = sigmoid(g[hidden + k]);
            let cell = g[2 * hidden + k].tanh();
            let o = sigmoid(g[3 * hidden + k]);
            c[k] = f * c[k] + i * cell;
            h[k] = o * c[k].tanh();
        }
    }
    output_bias
        + h[..hidden]
            .iter()
            .zip(output)
            .map(|(a, b)| a * b)
            .sum::<f32>()
}

/// The gradient of the mean squared one-step error over `windows` (each `steps + 1` values,
/// the last one the target), by candle's automatic differentiation.
fn gradient(
    config: &LstmConfig,
    parameters: &[f32],
    windows: &[f32],
) -> candle_core::Result<Vec<f32>> {
    let device = Device::Cpu;
    let (rows, gates, hidden, steps) = (
        config.weight_rows(),
        config.gates(),
        config.hidden,
        config.steps,
    );
    let batch = windows.len() / (steps + 1);
    let weights = Var::from_tensor(&Tensor::from_slice(
        &parameters[..rows * gates],
        (rows, gates),
        &device,
    )?)?;
    let biases = Var::from_tensor(&Tensor::from_slice(
        &parameters[rows * gates..rows * gates + gates],
        (1, gates),
        &device,
    )?)?;
    let output = Var::from_tensor(&Tensor::from_slice(
        &parameters[rows * gates + gates..rows * gates + gates + hidden],
        (hidden, 1),
        &device,
    )?)?;
    let output_bias = Var::from_tensor(&Tensor::from_slice(
        &parameters[rows * gates + gates + hidden..],
        (1, 1),
        &device,
    )?)?;
    let data = Tensor::from_slice(windows, (batch, steps + 1), &device)?;
    let sig = |t: &Tensor| (t.neg()?.exp()? + 1.0)?.recip();
    let mut h = Tensor::zeros((batch, hidden), DType::F32, &device)?;
    let mut c = Tensor::zeros((batch, hidden), DType::F32, &device)?;
    for t in 0..steps {
        let x = data.narrow(1, t, 1)?;
        let input = Tensor::cat(&[&x, &h], 1)?;
        let g = input
            .matmul(weights.as_tensor())?
            .broadcast_add(biases.as_tensor())?;
        let i = sig(&g.narrow(1, 0, hidden)?)?;
        let f = sig(&g.narrow(1, hidden, hidden)?)?;
        let cell = g.narrow(1, 2 * hidden, hidden)?.tanh()?;
        let o = sig(&g.narrow(1, 3 * hidden, hidden)?)?;
        c = ((f * &c)? + (i * cell)?)?;
        h = (o * c.tanh()?)?;
    }
    let prediction = h
        .matmul(output.as_tensor())?
        .broadcast_add(output_bias.as_tensor())?;
    let target = data.narrow(1, steps, 1)?;
    let loss = (prediction - target)?.sqr()?.mean_all()?;
    let grads = loss.backward()?;
    let mut flat = Vec::with_capacity(parameters.len());
    for var in [&weights, &biases, &output, &output_bias] {
        let grad = match grads.get(var.as_tensor()) {
            Some(g) => g.flatten_all()?.to_vec1::<f32>()?,
            None => vec![0.0; var.as_tensor().elem_count()],
        };
        flat.extend(grad);
    }
    Ok(flat)
}

/// One Adam step on the training's parameters, gradients clipped to ±1.
fn adam(config: &LstmConfig, training: &mut Training, gradient: &[f32]) {
    const BETA1: f32 = 0.9;
    const BETA2: f32 = 0.999;
    training.step += 1;
    let t = training.step as i32;
    let lr = config.learning_rate as f32;
    let correction1 = 1.0 - BETA1.powi(t);
    let correction2 = 1.0 - BETA2.powi(t);
    for (((p, m), v), &g) in training
        .network
        .parameters
        .iter_mut()
        .zip(&mut training.first_moment)
        .zip(&mut training.second_moment)
        .zip(gradient)
    {
        let g = if g.is_finite() {
            g.clamp(-1.0, 1.0)
        } else {
            0.0
        };
        *m = BETA1 * *m + (1.0 - BETA1) * g;
        *v = BETA2 * *v + (1.0 - BETA2) * g * g;
        *p -= lr * (*m / correction1) / ((*v / correction2).sqrt() + 1e-8);
    }
}

impl Detector for Lstm {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn config(&self) -> serde_json::Value {
        serde_json::to_value(self.config).unwrap_or_default()
    }

    fn score(&self, features: &Features) -> Option<Score> {
        let network = self.state.network.as_ref()?;
        let x = features.get(self.config.input);
        let predicted = self.next_prediction(network);
        let sigma = self.sigma(network);
        Some(Score {
            score: ((x - predicted) / sigma).abs(),
            expected: Band {
                lower: predicted - 3.0 * sigma,
                upper: predicted + 3.0 * sigma,
            },
        })
    }

    fn update(&mut self, features: &Features) {
        let x = features.get(self.config.input);
        if !x.is_finite() {
            return;
        }
        self.learn(x);
        self.refresh_prediction();
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot::encode(KIND, SNAPSHOT_VERSION, &self.state)
    }

    fn restore(&mut self, snapshot: &Snapshot) -> Result<()> {
        let state: LstmState = snapshot.decode(KIND, SNAPSHOT_VERSION)?;
        let count = self.config.parameter_count();
        let network_fits = |n: &Network| n.parameters.len() == count && n.std > 0.0;
        let consistent = state.history.len() == self.config.history
            && (state.head as usize) < self.config.history
            && state.network.as_ref().is_none_or(network_fits)
            && state.training.as_ref().is_none_or(|t| {
                network_fits(&t.network)
                    && t.first_moment.len() == count
                    && t.second_moment.len() == count
                    && t.left > 0
            });
        if !consistent {
            return Err(Error::SnapshotCorrupt {
                kind: KIND.into(),
                message: format!(
                    "the snapshot does not fit {} hidden units and a history of {}",
                    self.config.hidden, self.config.history
                ),
            });
        }
        self.state = state;
        self.refresh_prediction();
        Ok(())
    }

    fn state_bytes(&self) -> usize {
        let count = self.config.parameter_count();
        std::mem::size_of::<Self>()
            + self.state.history.capacity() * 4
            + self.state.network.as_ref().map_or(0, |_| count * 4)
            + self.state.training.as_ref().map_or(0, |_| count * 12)
    }

    fn snapshot_split(&self) -> (Snapshot, Vec<WeightTensor>) {
        let mut state = self.state.clone();
        let mut weights = Vec::new();
        let config = &self.config;
        if let Some(network) = &mut state.network {
            let parameters = std::mem::take(&mut network.parameters);
            let (rows, gates, hidden) = (config.weight_rows(), config.gates(), config.hidden);
            let layers = [
                ("gates.weight", vec![rows, gates]),
                ("gates.bias", vec![gates]),
                ("output.weight", vec![hidden]),
                ("output.bias", vec![1]),
            ];
            let mut rest = parameters.as_slice();
            for (name, shape) in layers {
                let (values, tail) = rest.split_at(shape.iter().product::<usize>().min(rest.len()));
                weights.push(WeightTensor {
                    name: name.to_owned(),
                    shape,
                    values: values.to_vec(),
                });
                rest = tail;
            }
        }
        if let Some(training) = &mut state.training {
            for (name, values) in [
                ("training.parameters", &mut training.network.parameters),
                ("training.first_moment", &mut training.first_moment),
                ("training.second_moment", &mut training.second_moment),
            ] {
                let values = std::mem::take(values);
                weights.push(WeightTensor {
                    name: name.to_owned(),
                    shape: vec![values.len()],
                    values,
                });
            }
        }
        (Snapshot::encode(KIND, SNAPSHOT_VERSION, &state), weights)
    }

    fn restore_split(&mut self, snapshot: &Snapshot, weights: &[WeightTensor]) -> Result<()> {
        let mut state: LstmState = snapshot.decode(KIND, SNAPSHOT_VERSION)?;
        let tensor = |name: &str| -> Result<&[f32]> {
            weights
                .iter()
                .find(|t| t.name == name)
                .map(|t| t.values.as_slice())
                .ok_or_else(|| Error::SnapshotCorrupt {
                    kind: KIND.into(),
                    message: format!("weight tensor {name:?} is missing"),
                })
        };
        if let Some(network) = &mut state.network {
            network.parameters.clear();
            for name in ["gates.weight", "gates.bias", "output.weight", "output.bias"] {
                network.parameters.extend_from_slice(tensor(name)?);
            }
        }
        if let Some(training) = &mut state.training {
            training.network.parameters = tensor("training.parameters")?.to_vec();
            training.first_moment = tensor("training.first_moment")?.to_vec();
            training.second_moment = tensor("training.second_moment")?.to_vec();
        }
        // The whole state goes through `restore`, which checks every size against the
        // configuration.
        self.restore(&Snapshot::encode(KIND, SNAPSHOT_VERSION, &state))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_split_out_and_back_give_the_same_detector() {
        let config = LstmConfig {
            warmup: 40,
            ..LstmConfig::default()
        };
        let mut lstm = Lstm::new(config).unwrap();
        let mut features = Features::first(0, 0.0);
        // Long enough to be mid-training and to have a trained network.
        for i in 0..700 {
            features.value = (i as f64 * 0.3).sin() * 5.0 + (i % 7) as f64;
            lstm.observe(&features);
        }
        assert!(lstm.state.network.is_some());
        let (rest, weights) = lstm.snapshot_split();
        let names: Vec<&str> = weights.iter().map(|t| t.name.as_str()).collect();
        assert!(names.contains(&"gates.weight"), "{names:?}");
        let gates = &weights[0];
        assert_eq!(gates.shape, vec![1 + config.hidden, 4 * config.hidden]);
        assert_eq!(gates.values.len(), gates.shape.iter().product::<usize>());
        // The rest is much smaller than the whole snapshot: the weights really left it.
        assert!(rest.state.len() < lstm.snapshot().state.len());
        let mut restored = Lstm::new(config).unwrap();
        restored.restore_split(&rest, &weights).unwrap();
        assert_eq!(restored.snapshot(), lstm.snapshot());
        // A missing or wrongly sized tensor is refused and changes nothing.
        let before = restored.snapshot();
        assert!(restored.restore_split(&rest, &weights[1..]).is_err());
        let mut short = weights.clone();
        short[0].values.pop();
        assert!(restored.restore_split(&rest, &short).is_err());
        assert_eq!(restored.snapshot(), before);
    }

    /// A sawtooth with a slow ramp and a fast fall: easy to predict from its last few values,
    /// hard for a level model.
    fn saw(i: usize) -> f64 {
        let phase = i % 20;
        if phase < 16 {
            phase as f64
        } else {
            (19 - phase) as f64 * 5.0
        }
    }

    fn trained(points: usize) -> Lstm {
        let mut d = Lstm::new(LstmConfig::default()).unwrap();
        for i in 0..points {
            d.update(&Features::first(i as i64, saw(i)));
        }
        d
    }

    #[test]
    fn the_forward_pass_matches_the_training_graph() {
        // The plain-Rust forward pass and candle's must agree, or scores would not be the
        // errors the network was trained to make small.
        let config = LstmConfig::default();
        let mut d = Lstm::new(config).unwrap();
        let parameters = d.initial_parameters();
        let window: Vec<f32> = (0..=config.steps).map(|i| (i as f32 * 0.7).sin()).collect();
        let ours = forward(&config, &parameters, &window[..config.steps]);
        // The loss of one window is (prediction - target)²; its gradient with respect to the
        // output bias is 2 (prediction - target).
        let grad = gradient(&config, &parameters, &window).unwrap();
        let from_candle = grad[config.parameter_count() - 1] / 2.0 + window[config.steps];
        assert!((ours - from_candle).abs() < 1e-5, "{ours} vs {from_candle}");
    }

    #[test]
    fn learns_a_shape_and_scores_a_break_in_it() {
        let d = trained(2000);
        assert!(d.is_trained());
        let usual = d.score(&Features::first(0, saw(2000))).unwrap().score;
        // The ramp stops and jumps to where the fall would be.
        let broken = d
            .score(&Features::first(0, saw(2000) + 12.0))
            .unwrap()
            .score;
        assert!(usual < 3.0, "usual {usual}");
        assert!(broken > usual + 3.0, "broken {broken} vs usual {usual}");
    }

    #[test]
    fn training_is_spread_over_points_and_deterministic() {
        let config = LstmConfig::default();
        let mut d = Lstm::new(config).unwrap();
        for i in 0..config.warmup {
            d.update(&Features::first(i as i64, saw(i)));
        }
        // The first training has begun and needs first_iterations points to finish.
        assert!(!d.is_trained());
        for i in config.warmup..config.warmup + config.first_iterations as usize - 2 {
            d.update(&Features::first(i as i64, saw(i)));
        }
        assert!(!d.is_trained());
        for i in config.warmup + config.first_iterations as usize - 2..config.warmup + 80 {
            d.update(&Features::first(i as i64, saw(i)));
        }
        assert!(d.is_trained());
        assert_eq!(trained(700), trained(700));
    }

    #[test]
    fn the_remembered_prediction_is_always_the_fresh_one() {
        // Scoring reads the prediction made when the previous point was learnt; through the
        // first training, a refresh and a restore it must equal running the network anew.
        let mut d = Lstm::new(LstmConfig {
            retrain_every: 150,
            ..LstmConfig::default()
        })
        .unwrap();
        for i in 0..600 {
            if i == 420 {
                let mut restored = Lstm::new(d.config).unwrap();
                restored.restore(&d.snapshot()).unwrap();
                d = restored;
            }
            if let Some(network) = &d.state.network {
                assert_eq!(d.state.prediction, Some(d.predict(network)), "point {i}");
            }
            d.update(&Features::first(i as i64, saw(i)));
        }
        assert!(d.is_trained());
    }

    #[test]
    fn snapshots_round_trip_and_are_checked() {
        let d = trained(400);
        let mut e = Lstm::new(LstmConfig::default()).unwrap();
        e.restore(&d.snapshot()).unwrap();
        assert_eq!(d, e);
        let mut other = Lstm::new(LstmConfig {
            hidden: 4,
            ..LstmConfig::default()
        })
        .unwrap();
        assert!(other.restore(&d.snapshot()).is_err());
    }

    #[test]
    fn invalid_parameters_are_rejected() {
        for config in [
            LstmConfig {
                hidden: 0,
                ..LstmConfig::default()
            },
            LstmConfig {
                history: 4,
                ..LstmConfig::default()
            },
            LstmConfig {
                learning_rate: 0.0,
                ..LstmConfig::default()
            },
        ] {
            assert!(Lstm::new(config).is_err(), "{config:?}");
        }
    }
}
