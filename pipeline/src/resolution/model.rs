//! The model file written by `kith-runner train` and read by pipelines
//! (`resolution.model`): m and u probabilities per comparison level, term
//! frequencies, and the prior. Versioned, so that a newer runner can tell an
//! old model from a damaged one.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Written by this runner. Format 1 (no sessions, no `trainedBy`) is read too.
pub const MODEL_FORMAT: u32 = 2;
const OLDEST_FORMAT: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Model {
    pub format: u32,
    /// Probability that two records taken at random match.
    pub prior: f64,
    pub comparisons: Vec<ComparisonModel>,
    /// How the model was made: records, candidate pairs, EM iterations.
    #[serde(default)]
    pub training: BTreeMap<String, f64>,
    /// The EM sessions, one per training rule, used or not.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sessions: Vec<SessionModel>,
}

/// One EM session of `train`: a training rule's candidate pairs and what EM
/// found among them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SessionModel {
    /// The rule, as key names: `[dob]`.
    pub rule: String,
    pub candidate_pairs: u64,
    /// The share of its candidate pairs EM took for matches.
    pub match_share: f64,
    pub iterations: u64,
    /// Whether its `m` went into the model; when not, `note` says why.
    pub used: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The `m` it estimated, per comparison name (the comparisons its rule
    /// does not read).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub m: BTreeMap<String, Vec<f64>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ComparisonModel {
    pub name: String,
    /// Level names, best first, as a check that the model fits the pipeline.
    pub levels: Vec<String>,
    pub m: Vec<f64>,
    pub u: Vec<f64>,
    /// For term-frequency comparisons: the share of records holding each
    /// exact-match key, for the keys more common than `tfFloor`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub term_frequencies: BTreeMap<String, f64>,
    /// The share assumed for a key not in `termFrequencies`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tf_floor: Option<f64>,
    /// Where `m` came from: the rules of the sessions averaged, or a note
    /// (`starting values`, `no data`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trained_by: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("cannot read model file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("model file {path} is not a Kith model: {message}")]
    Invalid { path: String, message: String },
}

impl Model {
    pub fn load(path: &std::path::Path) -> Result<Model, ModelError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ModelError::Read {
            path: shown.clone(),
            source,
        })?;
        Model::parse(&text, &shown)
    }

    /// A model from its JSON text; `shown` names where it came from.
    pub fn parse(text: &str, shown: &str) -> Result<Model, ModelError> {
        let shown = shown.to_string();
        let model: Model = serde_json::from_str(text).map_err(|e| ModelError::Invalid {
            path: shown.clone(),
            message: e.to_string(),
        })?;
        if !(OLDEST_FORMAT..=MODEL_FORMAT).contains(&model.format) {
            return Err(ModelError::Invalid {
                path: shown,
                message: format!(
                    "format {} is not supported (this runner reads formats {OLDEST_FORMAT} to {MODEL_FORMAT})",
                    model.format
                ),
            });
        }
        let finite = |v: &[f64]| v.iter().all(|p| p.is_finite());
        if !model.prior.is_finite() {
            return Err(ModelError::Invalid {
                path: shown,
                message: "`prior` is not a finite number: train the model again".into(),
            });
        }
        if let Some(c) = model
            .comparisons
            .iter()
            .find(|c| !finite(&c.m) || !finite(&c.u))
        {
            return Err(ModelError::Invalid {
                path: shown,
                message: format!(
                    "comparison `{}` has probabilities that are not finite numbers: train the model again",
                    c.name
                ),
            });
        }
        Ok(model)
    }
}
