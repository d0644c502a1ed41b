//! A model version's trained state on disk: per series, the chain's state in a versioned
//! serde format, with neural weights apart as safetensors.
//!
//! Layout: the magic `AIOPSMD\0`, a little-endian `u16` format version, a little-endian `u64`
//! length of the state section, the state section (postcard: the template's name and, per
//! series, a [`ChainSnapshot`] encoding with the weights taken out), then the weights section:
//! a safetensors file whose tensors are named `<series key, 16 hex digits>.<detector
//! index>.<tensor>` (`00ab….4.gates.weight`), `f32`, so any safetensors reader can inspect them.
//! A chain built from the version's parameters restores its state exactly.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use aiops_operators::{ChainSnapshot, Registry, SeriesChain, Template, WeightTensor};

use crate::error::{Error, Result};

const MAGIC: &[u8; 8] = b"AIOPSMD\0";

/// The format version this build writes and reads.
pub const ARTIFACT_FORMAT_VERSION: u16 = 2;

/// Neural weights of one series: `(detector index, tensor)`.
pub type SeriesWeights = Vec<(usize, WeightTensor)>;

/// Trained state of a version.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ModelArtifact {
    /// The template the snapshots were taken under, by name.
    pub template: String,
    /// Encoded chain snapshot (without neural weights) per series key.
    pub series: BTreeMap<u64, Vec<u8>>,
    /// Neural weights per series key (series whose detectors have none are absent).
    pub weights: BTreeMap<u64, SeriesWeights>,
}

/// The state section.
#[derive(Serialize, Deserialize)]
struct StateSection {
    template: String,
    series: BTreeMap<u64, Vec<u8>>,
}

impl ModelArtifact {
    /// An empty artifact for `template`.
    pub fn new(template: &str) -> ModelArtifact {
        ModelArtifact {
            template: template.to_owned(),
            ..ModelArtifact::default()
        }
    }

    /// Keeps what `chain` has learnt as series `key`'s state.
    pub fn insert(&mut self, key: u64, chain: &SeriesChain, template: &Template) {
        let (snapshot, mut weights) = chain.snapshot_split(template);
        sort_tensors(&mut weights);
        self.series.insert(key, snapshot.encode());
        if weights.is_empty() {
            self.weights.remove(&key);
        } else {
            self.weights.insert(key, weights);
        }
    }

    /// A chain of `template` with series `key`'s state, if the artifact has it.
    pub fn restore(
        &self,
        key: u64,
        template: &Template,
        registry: &Registry,
    ) -> Option<aiops_operators::Result<SeriesChain>> {
        let bytes = self.series.get(&key)?;
        Some((|| {
            let snapshot = ChainSnapshot::decode(bytes)?;
            let mut chain = SeriesChain::new(template, registry)?;
            let no_weights = Vec::new();
            let weights = self.weights.get(&key).unwrap_or(&no_weights);
            chain.restore_split(template, &snapshot, weights)?;
            Ok(chain)
        })())
    }

    /// Whether series `key` has the same state here and in `other`.
    pub fn same_state(&self, other: &ModelArtifact, key: u64) -> bool {
        self.series.get(&key) == other.series.get(&key)
            && self.weights.get(&key) == other.weights.get(&key)
    }

    /// Encodes the artifact.
    pub fn encode(&self) -> Vec<u8> {
        let section = StateSection {
            template: self.template.clone(),
            series: self.series.clone(),
        };
        // Encoding plain maps of bytes into a Vec cannot fail.
        let state = postcard::to_stdvec(&section).unwrap_or_default();
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&ARTIFACT_FORMAT_VERSION.to_le_bytes());
        bytes.extend_from_slice(&(state.len() as u64).to_le_bytes());
        bytes.extend(state);
        bytes.extend(self.encode_weights());
        bytes
    }

    fn encode_weights(&self) -> Vec<u8> {
        let raw: Vec<(String, Vec<usize>, Vec<u8>)> = self
            .weights
            .iter()
            .flat_map(|(key, tensors)| {
                tensors.iter().map(move |(detector, tensor)| {
                    let bytes = tensor.values.iter().flat_map(|v| v.to_le_bytes()).collect();
                    (
                        format!("{key:016x}.{detector}.{}", tensor.name),
                        tensor.shape.clone(),
                        bytes,
                    )
                })
            })
            .collect();
        let views = raw.iter().filter_map(|(name, shape, bytes)| {
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), bytes)
                .ok()
                .map(|view| (name.clone(), view))
        });
        // Every view was checked against its shape above: serializing cannot fail.
        safetensors::serialize(views, None).unwrap_or_default()
    }

    /// Decodes an artifact of `model`, checking the magic, the format version and both
    /// sections.
    pub fn decode(model: &str, bytes: &[u8]) -> Result<ModelArtifact> {
        let corrupt = |message: String| Error::ModelArtifact {
            model: model.to_owned(),
            message,
        };
        let Some(rest) = bytes.strip_prefix(MAGIC) else {
            return Err(corrupt("not a model artifact (bad magic)".into()));
        };
        let (Some(version), Some(length), Some(body)) =
            (rest.get(..2), rest.get(2..10), rest.get(10..))
        else {
            return Err(corrupt("truncated header".into()));
        };
        let version = u16::from_le_bytes([version[0], version[1]]);
        if version != ARTIFACT_FORMAT_VERSION {
            return Err(corrupt(format!(
                "format version {version}; this build reads version {ARTIFACT_FORMAT_VERSION}"
            )));
        }
        let mut length_bytes = [0u8; 8];
        length_bytes.copy_from_slice(length);
        let length = u64::from_le_bytes(length_bytes);
        let Some((state, weights)) = usize::try_from(length)
            .ok()
            .filter(|&n| n <= body.len())
            .map(|n| body.split_at(n))
        else {
            return Err(corrupt("truncated state section".into()));
        };
        let section: StateSection =
            postcard::from_bytes(state).map_err(|e| corrupt(format!("state section: {e}")))?;
        let mut artifact = ModelArtifact {
            template: section.template,
            series: section.series,
            weights: BTreeMap::new(),
        };
        let tensors = safetensors::SafeTensors::deserialize(weights)
            .map_err(|e| corrupt(format!("weights section (safetensors): {e}")))?;
        for (name, view) in tensors.tensors() {
            let parsed = name.split_once('.').and_then(|(key, rest)| {
                let (detector, tensor) = rest.split_once('.')?;
                Some((
                    u64::from_str_radix(key, 16).ok()?,
                    detector.parse::<usize>().ok()?,
                    tensor,
                ))
            });
            let (Some((key, detector, tensor)), safetensors::Dtype::F32) = (parsed, view.dtype())
            else {
                return Err(corrupt(format!("unexpected tensor {name:?}")));
            };
            let values = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            artifact.weights.entry(key).or_default().push((
                detector,
                WeightTensor {
                    name: tensor.to_owned(),
                    shape: view.shape().to_vec(),
                    values,
                },
            ));
        }
        // safetensors keeps its own order: put each series' tensors back in the canonical one.
        for tensors in artifact.weights.values_mut() {
            sort_tensors(tensors);
        }
        Ok(artifact)
    }

    /// Adds the series of `earlier` (the version this one succeeds, with the same parameters)
    /// that this one was not trained on, so a version is complete on its own: activating it,
    /// even straight after another, never loses what an earlier version learnt. A running
    /// pipeline recognises carried-over state (the same as the version before's) and keeps the
    /// series' live state instead.
    pub fn carry_over(&mut self, earlier: &ModelArtifact) {
        for (key, bytes) in &earlier.series {
            if !self.series.contains_key(key) {
                self.series.insert(*key, bytes.clone());
                if let Some(weights) = earlier.weights.get(key) {
                    self.weights.insert(*key, weights.clone());
                }
            }
        }
    }

    /// Checks that every series' state restores into a chain of `template`, so a version that
    /// would fail in the pipeline is refused before it is activated.
    pub fn check(&self, model: &str, template: &Template, registry: &Registry) -> Result<()> {
        for key in self.series.keys() {
            if let Some(Err(e)) = self.restore(*key, template, registry) {
                return Err(Error::ModelArtifact {
                    model: model.to_owned(),
                    message: format!("series {key:016x}: {e}"),
                });
            }
        }
        Ok(())
    }
}

/// The canonical order of a series' tensors: by detector, then by name.
fn sort_tensors(tensors: &mut SeriesWeights) {
    tensors.sort_by(|(a, x), (b, y)| (a, &x.name).cmp(&(b, &y.name)));
}

#[cfg(test)]
mod tests {
    use super::*;
    use aiops_schemas::{Labels, Limits, MetricPoint, Series};
    use std::sync::Arc;

    fn trained(template: &Template, points: usize) -> (u64, SeriesChain) {
        let series = Arc::new(Series::new("t", "m", Labels::new(), &Limits::default()).unwrap());
        let mut chain = SeriesChain::new(template, &Registry::builtin()).unwrap();
        for i in 0..points {
            chain.step(
                template,
                &MetricPoint {
                    series: series.clone(),
                    timestamp: i as i64 * 60_000,
                    value: (i as f64 * 0.37).sin() * 3.0 + (i % 5) as f64,
                },
            );
        }
        (series.key().0, chain)
    }

    #[test]
    fn round_trip_and_clear_errors() {
        let template = Template::light();
        let (key, chain) = trained(&template, 100);
        let mut artifact = ModelArtifact::new(&template.name);
        artifact.insert(key, &chain, &template);
        let bytes = artifact.encode();
        assert_eq!(ModelArtifact::decode("web-v1", &bytes).unwrap(), artifact);
        let restored = artifact
            .restore(key, &template, &Registry::builtin())
            .unwrap()
            .unwrap();
        assert_eq!(restored.snapshot(&template), chain.snapshot(&template));
        let err = ModelArtifact::decode("web-v1", b"garbage").unwrap_err();
        assert!(err.to_string().contains("web-v1") && err.to_string().contains("magic"));
        let mut newer = bytes.clone();
        newer[8] = 9;
        let err = ModelArtifact::decode("web-v1", &newer)
            .unwrap_err()
            .to_string();
        assert!(err.contains("format version 9"), "{err}");
        for cut in [12, bytes.len() / 2, bytes.len() - 2] {
            let err = ModelArtifact::decode("web-v1", &bytes[..cut]).unwrap_err();
            assert!(err.to_string().contains("web-v1"), "{err}");
        }
    }

    /// Neural weights leave the state section for the safetensors one, readable by the
    /// safetensors crate on its own, and come back exactly.
    #[cfg(feature = "lstm")]
    #[test]
    fn lstm_weights_are_kept_as_safetensors() {
        let template = Template {
            detectors: vec![aiops_operators::DetectorSpec::new("lstm")],
            ..Template::light()
        };
        let (key, chain) = trained(&template, 600);
        let mut artifact = ModelArtifact::new(&template.name);
        artifact.insert(key, &chain, &template);
        assert!(!artifact.weights[&key].is_empty());
        let bytes = artifact.encode();
        let state_length = u64::from_le_bytes(bytes[10..18].try_into().unwrap()) as usize;
        let tensors = safetensors::SafeTensors::deserialize(&bytes[18 + state_length..]).unwrap();
        let gates = tensors
            .tensor(&format!("{key:016x}.0.gates.weight"))
            .unwrap();
        assert_eq!(gates.dtype(), safetensors::Dtype::F32);
        assert_eq!(gates.shape(), [9, 32]);
        let decoded = ModelArtifact::decode("lstm-v1", &bytes).unwrap();
        assert_eq!(decoded, artifact);
        let restored = decoded
            .restore(key, &template, &Registry::builtin())
            .unwrap()
            .unwrap();
        assert_eq!(restored.snapshot(&template), chain.snapshot(&template));
    }
}
