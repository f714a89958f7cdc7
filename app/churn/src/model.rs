//! The model file: versioned JSON holding everything needed to score and to
//! audit a model — schema version, feature list, preprocessing parameters,
//! weights and trees, risk thresholds, training settings, metrics and a hash
//! of the training data.
//!
//! The file is written deterministically (fixed field order, shortest
//! round-trip floats, no timestamps), so training twice on the same data
//! with the same settings gives the same bytes.
//!
//! The shipped model, `app/churn/model/churn-model.json`, is compiled into
//! the crate ([`ModelFile::shipped`]): the binary needs no file beside it, and
//! the model it scores with is the one reviewed with the code. `--model`
//! overrides it.

use serde::{Deserialize, Serialize};

use crate::boost::Boosted;
use crate::evaluate::Evaluation;
use crate::features::{self, FeatureInfo, Preprocessing};
use crate::logistic::Logistic;
use crate::train::TrainConfig;

/// Identifies the file type.
pub const FORMAT: &str = "retainwise-churn-model";
/// Bumped whenever the file's meaning changes; older readers refuse newer files.
pub const SCHEMA_VERSION: u32 = 1;

/// The shipped model's JSON.
pub const SHIPPED_JSON: &str = include_str!("../model/churn-model.json");

/// The estimator: which model family, with its parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Estimator {
    Logistic(Logistic),
    Boosted(Boosted),
    /// `logit = w × logistic + (1 − w) × boosted`.
    Blend {
        logistic_weight: f64,
        logistic: Logistic,
        boosted: Boosted,
    },
}

impl Estimator {
    /// Adds each feature's contribution to `contrib` (zeroed by the caller)
    /// and returns the baseline log-odds; together they are the logit.
    pub fn explain_into(&self, x: &[f64], contrib: &mut [f64]) -> f64 {
        match self {
            Estimator::Logistic(m) => m.explain_into(x, 1.0, contrib),
            Estimator::Boosted(m) => m.explain_into(x, 1.0, contrib),
            Estimator::Blend {
                logistic_weight: w,
                logistic,
                boosted,
            } => logistic.explain_into(x, *w, contrib) + boosted.explain_into(x, 1.0 - w, contrib),
        }
    }

    /// The log-odds of churn.
    pub fn logit(&self, x: &[f64]) -> f64 {
        match self {
            Estimator::Logistic(m) => m.logit(x),
            Estimator::Boosted(m) => m.logit(x),
            Estimator::Blend {
                logistic_weight: w,
                logistic,
                boosted,
            } => w * logistic.logit(x) + (1.0 - w) * boosted.logit(x),
        }
    }

    /// A short name for reports.
    pub fn family(&self) -> &'static str {
        match self {
            Estimator::Logistic(_) => "logistic regression",
            Estimator::Boosted(_) => "gradient-boosted trees",
            Estimator::Blend { .. } => "blend (logistic + boosted trees)",
        }
    }

    fn check(&self, n: usize) -> Result<(), String> {
        let check_logistic = |m: &Logistic| {
            if m.weights.len() != n || m.reference.len() != n {
                return Err(format!(
                    "logistic model has {} weights, expected {n}",
                    m.weights.len()
                ));
            }
            Ok(())
        };
        let check_boosted = |m: &Boosted| {
            for (t, tree) in m.trees.iter().enumerate() {
                if tree.nodes.is_empty() {
                    return Err(format!("tree {t} is empty"));
                }
                for node in &tree.nodes {
                    if let Some(s) = node.split {
                        let size = tree.nodes.len();
                        // Children come after their parent, so walks end.
                        if s.feature >= n || s.left >= size || s.right >= size {
                            return Err(format!("tree {t} has a bad split"));
                        }
                    }
                }
                for (i, node) in tree.nodes.iter().enumerate() {
                    if let Some(s) = node.split
                        && (s.left <= i || s.right <= i)
                    {
                        return Err(format!("tree {t} has a cycle"));
                    }
                }
            }
            Ok(())
        };
        match self {
            Estimator::Logistic(m) => check_logistic(m),
            Estimator::Boosted(m) => check_boosted(m),
            Estimator::Blend {
                logistic,
                boosted,
                logistic_weight,
            } => {
                if !(0.0..=1.0).contains(logistic_weight) {
                    return Err("blend weight outside [0, 1]".into());
                }
                check_logistic(logistic)?;
                check_boosted(boosted)
            }
        }
    }
}

/// Probability cut-offs for the risk levels: `low` below `medium`, `high`
/// from `high` up, `medium` between.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RiskThresholds {
    pub medium: f64,
    pub high: f64,
}

/// Where the model came from: settings, data and split sizes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingInfo {
    pub config: TrainConfig,
    /// SHA-256 of the training CSV's bytes.
    pub data_sha256: String,
    pub rows_in_file: usize,
    pub duplicate_ids_dropped: usize,
    pub train_rows: usize,
    pub test_rows: usize,
    pub train_churn_rate: f64,
    pub test_churn_rate: f64,
}

/// Metrics measured at training time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelMetrics {
    /// On the training part (optimistic).
    pub train: Evaluation,
    /// On the held-out test part, never seen by training or tuning.
    pub test: Evaluation,
}

/// The whole model file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelFile {
    pub format: String,
    pub schema_version: u32,
    /// Version of the crate that wrote the file.
    pub written_by: String,
    pub features: Vec<FeatureInfo>,
    pub preprocessing: Preprocessing,
    pub estimator: Estimator,
    pub risk_thresholds: RiskThresholds,
    pub training: TrainingInfo,
    pub metrics: ModelMetrics,
}

/// Why a model file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("reading the model file: {0}")]
    Read(#[source] std::io::Error),
    #[error("model file is not valid JSON for this version: {0}")]
    Json(#[from] serde_json::Error),
    #[error("not a RetainWise model file (format {0:?})")]
    Format(String),
    #[error("model schema version {found} is not supported (this build reads {SCHEMA_VERSION})")]
    Version { found: u32 },
    #[error("model file does not fit this build: {0}")]
    Mismatch(String),
}

impl ModelFile {
    /// Parses and checks a model file's JSON.
    pub fn from_json(json: &str) -> Result<Self, ModelError> {
        // Look at the header first, so a newer file gets a version error
        // rather than a confusing field error.
        #[derive(Deserialize)]
        struct Header {
            format: String,
            schema_version: u32,
        }
        let header: Header = serde_json::from_str(json)?;
        if header.format != FORMAT {
            return Err(ModelError::Format(header.format));
        }
        if header.schema_version != SCHEMA_VERSION {
            return Err(ModelError::Version {
                found: header.schema_version,
            });
        }
        let model: ModelFile = serde_json::from_str(json)?;
        model.check()?;
        Ok(model)
    }

    /// Reads and checks a model file from `reader` (the caller opens the
    /// file: this crate does no I/O of its own). Not UTF-8 is a
    /// [`ModelError::Read`].
    pub fn from_reader(mut reader: impl std::io::Read) -> Result<Self, ModelError> {
        let mut json = String::new();
        reader.read_to_string(&mut json).map_err(ModelError::Read)?;
        Self::from_json(&json)
    }

    /// The model shipped with this build.
    pub fn shipped() -> Result<Self, ModelError> {
        Self::from_json(SHIPPED_JSON)
    }

    /// The file's bytes: pretty JSON with a trailing newline.
    pub fn to_json(&self) -> String {
        let mut json = serde_json::to_string_pretty(self).expect("a model always serialises");
        json.push('\n');
        json
    }

    fn check(&self) -> Result<(), ModelError> {
        if self.features != features::feature_infos() {
            return Err(ModelError::Mismatch(
                "its feature list differs from this build's".into(),
            ));
        }
        features::Encoder::new(&self.preprocessing)
            .map_err(|e| ModelError::Mismatch(e.to_string()))?;
        self.estimator
            .check(self.features.len())
            .map_err(ModelError::Mismatch)?;
        let t = self.risk_thresholds;
        if !(0.0 <= t.medium && t.medium <= t.high && t.high <= 1.0) {
            return Err(ModelError::Mismatch(
                "risk thresholds must satisfy 0 ≤ medium ≤ high ≤ 1".into(),
            ));
        }
        Ok(())
    }
}
