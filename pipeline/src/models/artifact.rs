//! A model version's trained state on disk: one chain snapshot per series the version was
//! trained on, in a versioned binary format.
//!
//! Layout: the magic `AIOPSMD\0`, a little-endian `u16` format version, then the postcard
//! encoding of [`ModelArtifact`]. Each series' state is a [`ChainSnapshot`] encoding (features,
//! every detector's state — the LSTM's weights among them —, calibration and alert state), so a
//! chain built from the version's parameters restores it exactly.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use aiops_operators::{ChainSnapshot, Registry, SeriesChain, Template};

use crate::error::{Error, Result};

const MAGIC: &[u8; 8] = b"AIOPSMD\0";

/// The format version this build writes and reads.
pub const ARTIFACT_FORMAT_VERSION: u16 = 1;

/// Trained state of a version.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ModelArtifact {
    /// The template the snapshots were taken under, by name.
    pub template: String,
    /// Encoded chain snapshot per series key.
    pub series: BTreeMap<u64, Vec<u8>>,
}

impl ModelArtifact {
    /// Encodes the artifact.
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&ARTIFACT_FORMAT_VERSION.to_le_bytes());
        // Encoding plain maps of bytes into a Vec cannot fail.
        bytes.extend(postcard::to_stdvec(self).unwrap_or_default());
        bytes
    }

    /// Decodes an artifact of `model`, checking the magic and the format version.
    pub fn decode(model: &str, bytes: &[u8]) -> Result<ModelArtifact> {
        let corrupt = |message: String| Error::ModelArtifact {
            model: model.to_owned(),
            message,
        };
        let Some(rest) = bytes.strip_prefix(MAGIC) else {
            return Err(corrupt("not a model artifact (bad magic)".into()));
        };
        let (Some(version), Some(body)) = (rest.get(..2), rest.get(2..)) else {
            return Err(corrupt("truncated header".into()));
        };
        let version = u16::from_le_bytes([version[0], version[1]]);
        if version != ARTIFACT_FORMAT_VERSION {
            return Err(corrupt(format!(
                "format version {version}; this build reads version {ARTIFACT_FORMAT_VERSION}"
            )));
        }
        postcard::from_bytes(body).map_err(|e| corrupt(e.to_string()))
    }

    /// Adds the series of `earlier` (the version this one succeeds, with the same parameters)
    /// that this one was not trained on, so a version is complete on its own: activating it,
    /// even straight after another, never loses what an earlier version learnt. A running
    /// pipeline recognises carried-over state (same bytes as the version before) and keeps the
    /// series' live state instead.
    pub fn carry_over(&mut self, earlier: &ModelArtifact) {
        for (key, bytes) in &earlier.series {
            self.series.entry(*key).or_insert_with(|| bytes.clone());
        }
    }

    /// Checks that every series' state restores into a chain of `template`, so a version that
    /// would fail in the pipeline is refused before it is activated.
    pub fn check(&self, model: &str, template: &Template, registry: &Registry) -> Result<()> {
        for (key, bytes) in &self.series {
            let fail = |e: aiops_operators::Error| Error::ModelArtifact {
                model: model.to_owned(),
                message: format!("series {key:016x}: {e}"),
            };
            let snapshot = ChainSnapshot::decode(bytes).map_err(fail)?;
            let mut chain = SeriesChain::new(template, registry).map_err(fail)?;
            chain.restore(template, &snapshot).map_err(fail)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_clear_errors() {
        let artifact = ModelArtifact {
            template: "web".into(),
            series: [(7, vec![1, 2, 3])].into(),
        };
        let bytes = artifact.encode();
        assert_eq!(ModelArtifact::decode("web-v1", &bytes).unwrap(), artifact);
        let err = ModelArtifact::decode("web-v1", b"garbage").unwrap_err();
        assert!(err.to_string().contains("web-v1") && err.to_string().contains("magic"));
        let mut newer = bytes.clone();
        newer[8] = 9;
        let err = ModelArtifact::decode("web-v1", &newer)
            .unwrap_err()
            .to_string();
        assert!(err.contains("format version 9"), "{err}");
        let err = ModelArtifact::decode("web-v1", &bytes[..bytes.len() - 2]).unwrap_err();
        assert!(err.to_string().contains("web-v1"));
    }
}
