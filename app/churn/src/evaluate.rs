//! Measuring a model: ROC AUC, PR AUC (average precision), log loss, Brier
//! score, accuracy at 0.5, a calibration table and the churn rate per risk
//! level. Pure functions over probabilities and labels.

use serde::{Deserialize, Serialize};

use crate::model::RiskThresholds;
use crate::score::RiskLevel;

/// Number of equal-width bins in the calibration table.
pub const CALIBRATION_BINS: usize = 10;

/// One bin of the calibration table: predictions in `[lower, upper)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationBin {
    pub lower: f64,
    pub upper: f64,
    pub count: usize,
    pub mean_predicted: f64,
    pub observed_rate: f64,
}

/// Customers and churn rate in one risk level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RiskBand {
    pub level: String,
    pub count: usize,
    pub churn_rate: f64,
}

/// Everything measured on one labelled set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub rows: usize,
    pub churn_rate: f64,
    pub roc_auc: f64,
    pub pr_auc: f64,
    pub log_loss: f64,
    pub brier: f64,
    pub accuracy: f64,
    pub calibration: Vec<CalibrationBin>,
    pub risk_levels: Vec<RiskBand>,
}

/// Measures `probabilities` against `labels` (same length, at least one row).
pub fn evaluate(probabilities: &[f64], labels: &[bool], thresholds: RiskThresholds) -> Evaluation {
    assert_eq!(probabilities.len(), labels.len());
    let n = labels.len().max(1) as f64;
    let positives = labels.iter().filter(|&&y| y).count();
    Evaluation {
        rows: labels.len(),
        churn_rate: positives as f64 / n,
        roc_auc: roc_auc(probabilities, labels),
        pr_auc: average_precision(probabilities, labels),
        log_loss: log_loss(probabilities, labels),
        brier: brier(probabilities, labels),
        accuracy: probabilities
            .iter()
            .zip(labels)
            .filter(|&(&p, &y)| (p >= 0.5) == y)
            .count() as f64
            / n,
        calibration: calibration(probabilities, labels),
        risk_levels: risk_bands(probabilities, labels, thresholds),
    }
}

/// Indices sorted by descending score (ties in index order).
fn descending(scores: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    order
}

/// Area under the ROC curve: the chance that a random churner scores above
/// a random stayer, ties counting one half.
pub fn roc_auc(scores: &[f64], labels: &[bool]) -> f64 {
    let order = descending(scores);
    let positives = labels.iter().filter(|&&y| y).count() as f64;
    let negatives = labels.len() as f64 - positives;
    if positives == 0.0 || negatives == 0.0 {
        return f64::NAN;
    }
    // Walk groups of equal scores from the top, counting the positives
    // already above each negative.
    let mut above = 0.0;
    let mut area = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        let (mut pos, mut neg) = (0.0, 0.0);
        while j < order.len() && scores[order[j]] == scores[order[i]] {
            if labels[order[j]] {
                pos += 1.0
            } else {
                neg += 1.0
            }
            j += 1;
        }
        area += neg * (above + pos / 2.0);
        above += pos;
        i = j;
    }
    area / (positives * negatives)
}

/// Average precision: the mean of the precision at each churner's rank,
/// taking tied scores as one threshold (scikit-learn's definition).
pub fn average_precision(scores: &[f64], labels: &[bool]) -> f64 {
    let order = descending(scores);
    let positives = labels.iter().filter(|&&y| y).count() as f64;
    if positives == 0.0 {
        return f64::NAN;
    }
    let (mut tp, mut seen, mut ap) = (0.0, 0.0, 0.0);
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        let mut pos = 0.0;
        while j < order.len() && scores[order[j]] == scores[order[i]] {
            if labels[order[j]] {
                pos += 1.0;
            }
            j += 1;
        }
        tp += pos;
        seen += (j - i) as f64;
        ap += (pos / positives) * (tp / seen);
        i = j;
    }
    ap
}

/// Mean negative log-likelihood, probabilities clipped to [1e-15, 1 − 1e-15].
pub fn log_loss(probabilities: &[f64], labels: &[bool]) -> f64 {
    let total: f64 = probabilities
        .iter()
        .zip(labels)
        .map(|(&p, &y)| {
            let p = p.clamp(1e-15, 1.0 - 1e-15);
            if y { -p.ln() } else { -(1.0 - p).ln() }
        })
        .sum();
    total / labels.len().max(1) as f64
}

/// Mean squared error of the probabilities.
pub fn brier(probabilities: &[f64], labels: &[bool]) -> f64 {
    let total: f64 = probabilities
        .iter()
        .zip(labels)
        .map(|(&p, &y)| (p - f64::from(u8::from(y))).powi(2))
        .sum();
    total / labels.len().max(1) as f64
}

/// Equal-width bins over [0, 1]; empty bins are omitted.
pub fn calibration(probabilities: &[f64], labels: &[bool]) -> Vec<CalibrationBin> {
    let mut count = [0usize; CALIBRATION_BINS];
    let mut predicted = [0.0; CALIBRATION_BINS];
    let mut observed = [0.0; CALIBRATION_BINS];
    for (&p, &y) in probabilities.iter().zip(labels) {
        let bin = ((p * CALIBRATION_BINS as f64) as usize).min(CALIBRATION_BINS - 1);
        count[bin] += 1;
        predicted[bin] += p;
        observed[bin] += f64::from(u8::from(y));
    }
    (0..CALIBRATION_BINS)
        .filter(|&b| count[b] > 0)
        .map(|b| CalibrationBin {
            lower: b as f64 / CALIBRATION_BINS as f64,
            upper: (b + 1) as f64 / CALIBRATION_BINS as f64,
            count: count[b],
            mean_predicted: predicted[b] / count[b] as f64,
            observed_rate: observed[b] / count[b] as f64,
        })
        .collect()
}

fn risk_bands(probabilities: &[f64], labels: &[bool], t: RiskThresholds) -> Vec<RiskBand> {
    [RiskLevel::Low, RiskLevel::Medium, RiskLevel::High]
        .into_iter()
        .map(|level| {
            let (count, churned) = probabilities
                .iter()
                .zip(labels)
                .filter(|&(&p, _)| RiskLevel::from_probability(p, t) == level)
                .fold((0usize, 0usize), |(c, k), (_, &y)| {
                    (c + 1, k + usize::from(y))
                });
            RiskBand {
                level: level.as_str().to_owned(),
                count,
                churn_rate: if count > 0 {
                    churned as f64 / count as f64
                } else {
                    0.0
                },
            }
        })
        .collect()
}

/// A human-readable report.
pub fn render(e: &Evaluation) -> String {
    let mut s = format!(
        "rows {}  churn rate {:.3}\n\
         ROC AUC   {:.4}\n\
         PR AUC    {:.4}\n\
         log loss  {:.4}\n\
         Brier     {:.4}\n\
         accuracy  {:.4} (threshold 0.5)\n\n\
         calibration\n  bin          count  predicted  observed\n",
        e.rows, e.churn_rate, e.roc_auc, e.pr_auc, e.log_loss, e.brier, e.accuracy
    );
    for b in &e.calibration {
        s += &format!(
            "  [{:.1}, {:.1})  {:>6}  {:>9.3}  {:>8.3}\n",
            b.lower, b.upper, b.count, b.mean_predicted, b.observed_rate
        );
    }
    s += "\nrisk levels\n  level   count  churn rate\n";
    for r in &e.risk_levels {
        s += &format!("  {:<6}  {:>5}  {:>10.3}\n", r.level, r.count, r.churn_rate);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_of_known_orderings() {
        let y = [false, false, true, true];
        assert_eq!(roc_auc(&[0.1, 0.2, 0.8, 0.9], &y), 1.0);
        assert_eq!(roc_auc(&[0.9, 0.8, 0.2, 0.1], &y), 0.0);
        assert_eq!(roc_auc(&[0.5, 0.5, 0.5, 0.5], &y), 0.5);
        // One inversion out of four pairs.
        assert_eq!(roc_auc(&[0.1, 0.85, 0.8, 0.9], &y), 0.75);
    }

    #[test]
    fn average_precision_matches_hand_computation() {
        // Ranked: 0.9 (+), 0.8 (-), 0.7 (+): AP = (1/1 + 2/3) / 2.
        let ap = average_precision(&[0.9, 0.8, 0.7], &[true, false, true]);
        assert!((ap - (1.0 + 2.0 / 3.0) / 2.0).abs() < 1e-12);
    }

    #[test]
    fn losses_of_a_perfect_and_a_coin_model() {
        let y = [true, false];
        assert!(log_loss(&[1.0, 0.0], &y) < 1e-12);
        assert!((log_loss(&[0.5, 0.5], &y) - std::f64::consts::LN_2).abs() < 1e-12);
        assert_eq!(brier(&[0.5, 0.5], &y), 0.25);
    }
}
