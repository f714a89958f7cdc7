//! The fast scoring form of an estimator: per-column lookup tables.
//!
//! Logistic regression and depth-1 trees (stumps) are additive: each
//! feature's contribution depends on that feature alone. So, once per model,
//! everything they say about a column is folded into
//! - for a categorical column, one number per level (the whole column's
//!   contribution when the customer has that level), and
//! - for a numeric feature, `slope × z + offset + step(z)`, where `step` is
//!   the sum of all stumps on that feature as one sorted step function.
//!
//! Scoring a row is then ~16 table look-ups and 5 binary searches instead of
//! a walk over hundreds of trees, with the same explanation. Deeper trees
//! (not additive) are kept and walked per row. The result equals
//! [`Estimator::explain_into`] up to floating-point rounding (tests check
//! 1e-9).

use crate::boost::{Boosted, Tree};
use crate::features::{Encoder, N_FEATURES, N_GROUPS, N_INDICATORS, N_NUMERIC, NUMERIC_GROUPS};
use crate::logistic::Logistic;
use crate::model::Estimator;
use crate::schema::{CATEGORIES, CustomerRow, N_CATEGORIES};

/// One numeric feature's additive term.
#[derive(Debug, Clone, Default)]
struct NumericTerm {
    slope: f64,
    offset: f64,
    /// Ascending; `values[i]` applies from `thresholds[i - 1]` (inclusive)
    /// to `thresholds[i]` (exclusive).
    thresholds: Vec<f64>,
    values: Vec<f64>,
    /// Stumps as (threshold, value below, value at or above), before compiling.
    stumps: Vec<(f64, f64, f64)>,
}

impl NumericTerm {
    fn at(&self, z: f64) -> f64 {
        let step = self.thresholds.partition_point(|&t| t <= z);
        self.slope * z + self.offset + self.values.get(step).copied().unwrap_or(0.0)
    }

    fn compile(&mut self) {
        let mut stumps = std::mem::take(&mut self.stumps);
        if stumps.is_empty() {
            return;
        }
        stumps.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut value: f64 = stumps.iter().map(|s| s.1).sum();
        self.values.push(value);
        for (i, &(t, below, above)) in stumps.iter().enumerate() {
            value += above - below;
            if i + 1 < stumps.len() && stumps[i + 1].0 == t {
                continue; // fold equal thresholds into one step
            }
            self.thresholds.push(t);
            self.values.push(value);
        }
    }
}

/// An estimator folded into per-column tables.
#[derive(Debug, Clone)]
pub struct Additive {
    baseline: f64,
    /// `levels[g][l]`: column g's contribution when its level is l.
    levels: Vec<Vec<f64>>,
    numeric: Vec<NumericTerm>,
    /// Trees deeper than one split, with their weight in the logit.
    trees: Vec<(f64, Tree)>,
    groups: [usize; N_FEATURES],
}

/// Maps an indicator feature to its (column, level).
fn indicator(feature: usize) -> (usize, usize) {
    let mut offset = 0;
    for (g, c) in CATEGORIES.iter().enumerate() {
        if feature < offset + c.levels.len() {
            return (g, feature - offset);
        }
        offset += c.levels.len();
    }
    unreachable!("feature {feature} is not an indicator")
}

impl Additive {
    pub fn new(estimator: &Estimator, groups: [usize; N_FEATURES]) -> Self {
        let mut a = Additive {
            baseline: 0.0,
            levels: CATEGORIES
                .iter()
                .map(|c| vec![0.0; c.levels.len()])
                .collect(),
            numeric: vec![NumericTerm::default(); N_NUMERIC],
            trees: Vec::new(),
            groups,
        };
        match estimator {
            Estimator::Logistic(m) => a.add_logistic(m, 1.0),
            Estimator::Boosted(m) => a.add_boosted(m, 1.0),
            Estimator::Blend {
                logistic_weight: w,
                logistic,
                boosted,
            } => {
                a.add_logistic(logistic, *w);
                a.add_boosted(boosted, 1.0 - w);
            }
        }
        a.numeric.iter_mut().for_each(NumericTerm::compile);
        a
    }

    /// `w × Σ_j weight_j (x_j − ref_j)`, folded per column.
    fn add_logistic(&mut self, m: &Logistic, w: f64) {
        self.baseline += w * m.baseline();
        for (j, (&weight, &reference)) in m.weights.iter().zip(&m.reference).enumerate() {
            if j < N_INDICATORS {
                let (g, level) = indicator(j);
                for (l, v) in self.levels[g].iter_mut().enumerate() {
                    let x = if l == level { 1.0 } else { 0.0 };
                    *v += w * weight * (x - reference);
                }
            } else {
                let term = &mut self.numeric[j - N_INDICATORS];
                term.slope += w * weight;
                term.offset -= w * weight * reference;
            }
        }
    }

    /// Stumps become table entries or steps; deeper trees are kept.
    fn add_boosted(&mut self, m: &Boosted, w: f64) {
        self.baseline += w * m.baseline();
        for tree in &m.trees {
            let root = &tree.nodes[0];
            let Some(split) = root.split else { continue };
            let (left, right) = (&tree.nodes[split.left], &tree.nodes[split.right]);
            if left.split.is_some() || right.split.is_some() {
                self.trees.push((w, tree.clone()));
                continue;
            }
            let below = w * (left.value - root.value);
            let above = w * (right.value - root.value);
            if split.feature < N_INDICATORS {
                let (g, level) = indicator(split.feature);
                for (l, v) in self.levels[g].iter_mut().enumerate() {
                    let x = if l == level { 1.0 } else { 0.0 };
                    *v += if x < split.threshold { below } else { above };
                }
            } else {
                let term = &mut self.numeric[split.feature - N_INDICATORS];
                term.stumps.push((split.threshold, below, above));
            }
        }
    }

    /// Fills `contributions` (per column) and returns the baseline.
    pub fn explain(
        &self,
        encoder: &Encoder,
        row: &CustomerRow,
        contributions: &mut [f64; N_GROUPS],
    ) -> f64 {
        for (g, (c, table)) in contributions.iter_mut().zip(&self.levels).enumerate() {
            *c = table[usize::from(encoder.level(row, g))];
        }
        contributions[N_CATEGORIES..].fill(0.0);
        let z = encoder.numeric(row);
        for ((term, &z), &g) in self.numeric.iter().zip(&z).zip(&NUMERIC_GROUPS) {
            contributions[g] += term.at(z);
        }
        if !self.trees.is_empty() {
            let mut x = [0.0; N_FEATURES];
            encoder.encode(row, &mut x);
            for (w, tree) in &self.trees {
                let mut node = &tree.nodes[0];
                while let Some(s) = node.split {
                    let child = &tree.nodes[if x[s.feature] < s.threshold {
                        s.left
                    } else {
                        s.right
                    }];
                    contributions[self.groups[s.feature]] += w * (child.value - node.value);
                    node = child;
                }
            }
        }
        self.baseline
    }
}
