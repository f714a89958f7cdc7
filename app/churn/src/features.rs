//! From a parsed [`CustomerRow`] to the model's numeric feature vector.
//!
//! The layout is fixed by code, not learned: one indicator per level of each
//! categorical column (`Contract=Month-to-month`, …), then five numeric
//! features (`tenure`, `log1p(tenure)`, `MonthlyCharges`, `TotalCharges`,
//! `log1p(TotalCharges)`), standardised with the training part's mean and
//! standard deviation. The model file stores the feature names and the model
//! refuses to load if they differ from this layout.
//!
//! Every feature belongs to one *group*, the CSV column it came from; a
//! customer's explanation adds up the contributions of a group's features so
//! a person reads `Contract=Month-to-month`, not three indicator weights.
//!
//! What training learned about the inputs ([`Preprocessing`]) is stored in
//! the model file and applied identically when scoring:
//! - a missing category (column absent, or blank in a row) takes the
//!   training part's most frequent level;
//! - a missing `TotalCharges` is `tenure × MonthlyCharges` (brand-new
//!   customers have a blank `TotalCharges` and tenure 0, so they get 0).

use serde::{Deserialize, Serialize};

use crate::schema::{CATEGORIES, CustomerRow, N_CATEGORIES};

const fn count_levels() -> usize {
    let mut total = 0;
    let mut i = 0;
    while i < CATEGORIES.len() {
        total += CATEGORIES[i].levels.len();
        i += 1;
    }
    total
}

/// Number of category indicator features.
pub const N_INDICATORS: usize = count_levels();
/// The numeric features, in order after the indicators.
pub const NUMERIC_NAMES: [&str; N_NUMERIC] = [
    "tenure",
    "log1p(tenure)",
    "MonthlyCharges",
    "TotalCharges",
    "log1p(TotalCharges)",
];
pub const N_NUMERIC: usize = 5;
/// Length of the feature vector.
pub const N_FEATURES: usize = N_INDICATORS + N_NUMERIC;

/// Explanation groups: the categorical columns, then tenure, MonthlyCharges
/// and TotalCharges.
pub const N_GROUPS: usize = N_CATEGORIES + 3;
pub const GROUP_TENURE: usize = N_CATEGORIES;
pub const GROUP_MONTHLY: usize = N_CATEGORIES + 1;
pub const GROUP_TOTAL: usize = N_CATEGORIES + 2;

/// The group (source column) of each numeric feature.
pub const NUMERIC_GROUPS: [usize; N_NUMERIC] = [
    GROUP_TENURE,
    GROUP_TENURE,
    GROUP_MONTHLY,
    GROUP_TOTAL,
    GROUP_TOTAL,
];

/// A feature's name and the column it explains.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureInfo {
    pub name: String,
    pub column: String,
}

/// Name of an explanation group.
pub fn group_name(group: usize) -> &'static str {
    match group {
        g if g < N_CATEGORIES => CATEGORIES[g].name,
        GROUP_TENURE => "tenure",
        GROUP_MONTHLY => "MonthlyCharges",
        _ => "TotalCharges",
    }
}

/// The group of every feature, in feature order.
pub fn feature_groups() -> [usize; N_FEATURES] {
    let mut groups = [0; N_FEATURES];
    let mut k = 0;
    for (g, category) in CATEGORIES.iter().enumerate() {
        for _ in category.levels {
            groups[k] = g;
            k += 1;
        }
    }
    groups[k..].copy_from_slice(&NUMERIC_GROUPS);
    groups
}

/// Names and groups of every feature, in feature order.
pub fn feature_infos() -> Vec<FeatureInfo> {
    let mut infos = Vec::with_capacity(N_FEATURES);
    for category in &CATEGORIES {
        for level in category.levels {
            infos.push(FeatureInfo {
                name: format!("{}={}", category.name, level),
                column: category.name.to_owned(),
            });
        }
    }
    for (name, group) in NUMERIC_NAMES.iter().zip(NUMERIC_GROUPS) {
        infos.push(FeatureInfo {
            name: (*name).to_owned(),
            column: group_name(group).to_owned(),
        });
    }
    infos
}

/// What training learned about the inputs; stored in the model file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preprocessing {
    /// Per categorical column, the level used when the value is missing:
    /// the most frequent level in the training part.
    pub category_fill: Vec<String>,
    /// Rule for a missing `TotalCharges` (documentation; the code applies it).
    pub total_charges_fill: String,
    /// Mean of each numeric feature before standardising.
    pub numeric_mean: Vec<f64>,
    /// Standard deviation of each numeric feature (1 when constant).
    pub numeric_std: Vec<f64>,
}

/// The rule for a missing `TotalCharges`.
pub const TOTAL_CHARGES_FILL: &str = "tenure * MonthlyCharges";

/// [`Preprocessing`] in the form used per row: level indices, not names.
#[derive(Debug, Clone)]
pub struct Encoder {
    fill: [u8; N_CATEGORIES],
    mean: [f64; N_NUMERIC],
    inv_std: [f64; N_NUMERIC],
}

/// The error when a model file's preprocessing does not fit this code.
#[derive(Debug, thiserror::Error)]
#[error("preprocessing: {0}")]
pub struct PreprocessingError(String);

impl Encoder {
    pub fn new(p: &Preprocessing) -> Result<Self, PreprocessingError> {
        if p.category_fill.len() != N_CATEGORIES
            || p.numeric_mean.len() != N_NUMERIC
            || p.numeric_std.len() != N_NUMERIC
        {
            return Err(PreprocessingError("wrong number of entries".into()));
        }
        let mut fill = [0; N_CATEGORIES];
        for (i, name) in p.category_fill.iter().enumerate() {
            let level = CATEGORIES[i]
                .levels
                .iter()
                .position(|l| l == name)
                .ok_or_else(|| {
                    PreprocessingError(format!(
                        "fill value {name:?} is not a level of {}",
                        CATEGORIES[i].name
                    ))
                })?;
            fill[i] = level as u8;
        }
        let mut mean = [0.0; N_NUMERIC];
        let mut inv_std = [0.0; N_NUMERIC];
        for k in 0..N_NUMERIC {
            let std = p.numeric_std[k];
            if !(std.is_finite() && std > 0.0 && p.numeric_mean[k].is_finite()) {
                return Err(PreprocessingError(format!(
                    "bad scale for {}",
                    NUMERIC_NAMES[k]
                )));
            }
            mean[k] = p.numeric_mean[k];
            inv_std[k] = 1.0 / std;
        }
        Ok(Encoder {
            fill,
            mean,
            inv_std,
        })
    }

    /// The level of category `i` used for this row (imputed when missing).
    pub fn level(&self, row: &CustomerRow, i: usize) -> u8 {
        row.categories[i].unwrap_or(self.fill[i])
    }

    /// Writes the row's feature vector into `out`.
    pub fn encode(&self, row: &CustomerRow, out: &mut [f64; N_FEATURES]) {
        out[..N_INDICATORS].fill(0.0);
        let mut offset = 0;
        for (i, category) in CATEGORIES.iter().enumerate() {
            out[offset + usize::from(self.level(row, i))] = 1.0;
            offset += category.levels.len();
        }
        out[N_INDICATORS..].copy_from_slice(&self.numeric(row));
    }

    /// The row's standardised numeric features.
    pub fn numeric(&self, row: &CustomerRow) -> [f64; N_NUMERIC] {
        let mut z = raw_numeric(row);
        for ((v, mean), inv_std) in z.iter_mut().zip(self.mean).zip(self.inv_std) {
            *v = (*v - mean) * inv_std;
        }
        z
    }
}

/// `TotalCharges`, imputed when missing.
pub fn total_charges(row: &CustomerRow) -> f64 {
    row.total_charges
        .unwrap_or(row.tenure * row.monthly_charges)
}

/// The numeric features before standardising.
fn raw_numeric(row: &CustomerRow) -> [f64; N_NUMERIC] {
    let total = total_charges(row);
    [
        row.tenure,
        row.tenure.ln_1p(),
        row.monthly_charges,
        total,
        total.ln_1p(),
    ]
}

/// Learns [`Preprocessing`] from the training rows.
pub fn fit_preprocessing(rows: &[&CustomerRow]) -> Preprocessing {
    let category_fill = CATEGORIES
        .iter()
        .enumerate()
        .map(|(i, category)| {
            let mut counts = vec![0usize; category.levels.len()];
            for row in rows {
                if let Some(level) = row.categories[i] {
                    counts[usize::from(level)] += 1;
                }
            }
            // Most frequent level; the first listed wins a tie.
            let best = (0..counts.len())
                .rev()
                .max_by_key(|&l| counts[l])
                .unwrap_or(0);
            category.levels[best].to_owned()
        })
        .collect();
    let n = rows.len().max(1) as f64;
    let mut mean = [0.0; N_NUMERIC];
    for row in rows {
        for (m, v) in mean.iter_mut().zip(raw_numeric(row)) {
            *m += v;
        }
    }
    mean.iter_mut().for_each(|m| *m /= n);
    let mut var = [0.0; N_NUMERIC];
    for row in rows {
        for ((s, v), m) in var.iter_mut().zip(raw_numeric(row)).zip(mean) {
            *s += (v - m) * (v - m);
        }
    }
    let numeric_std = var
        .iter()
        .map(|s| {
            let std = (s / n).sqrt();
            if std > 0.0 { std } else { 1.0 }
        })
        .collect();
    Preprocessing {
        category_fill,
        total_charges_fill: TOTAL_CHARGES_FILL.to_owned(),
        numeric_mean: mean.to_vec(),
        numeric_std,
    }
}
