//! Scoring: a pure function from parsed rows to churn probabilities, risk
//! levels and the three factors behind each score; plus the CSV writer that
//! the worker and `retainwise-app score` share.
//!
//! A factor is a column's contribution to the customer's log-odds of churn,
//! relative to the average training customer: `Contract=Month-to-month
//! (+0.84)` raised this customer's log-odds by 0.84. The baseline plus all
//! contributions is exactly the logit of `churn_probability`.

use std::fmt::Write as _;
use std::io;

use serde::{Deserialize, Serialize};

use crate::additive::Additive;
use crate::features::{
    self, Encoder, GROUP_MONTHLY, GROUP_TENURE, N_FEATURES, N_GROUPS, Preprocessing,
};
use crate::logistic::sigmoid;
use crate::model::{Estimator, ModelError, ModelFile, RiskThresholds};
use crate::report::IngestReport;
use crate::schema::{self, CATEGORIES, CustomerRow, N_CATEGORIES, SchemaError};

/// How many factors each score reports.
pub const N_FACTORS: usize = 3;

/// The output CSV's header.
pub const OUTPUT_HEADER: [&str; 6] = [
    "customer_id",
    "churn_probability",
    "risk_level",
    "factor_1",
    "factor_2",
    "factor_3",
];

/// A customer's risk band.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RiskLevel {
    Low,
    Medium,
    High,
}

impl RiskLevel {
    pub fn from_probability(p: f64, t: RiskThresholds) -> Self {
        if p >= t.high {
            RiskLevel::High
        } else if p >= t.medium {
            RiskLevel::Medium
        } else {
            RiskLevel::Low
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RiskLevel::Low => "low",
            RiskLevel::Medium => "medium",
            RiskLevel::High => "high",
        }
    }

    /// The level as the scored CSV writes it (`low`, `medium`, `high`).
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "low" => Some(RiskLevel::Low),
            "medium" => Some(RiskLevel::Medium),
            "high" => Some(RiskLevel::High),
            _ => None,
        }
    }
}

/// Which way a factor pushes a customer's risk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    Up,
    Down,
}

impl Direction {
    /// The direction of a contribution *as the scored CSV writes it*, to two
    /// decimals: one that rounds to `0.00` is written `+0.00` and reads as
    /// up. Deciding on the written value keeps a summary built while scoring
    /// equal to one built later from the CSV.
    pub fn of(contribution: f64) -> Self {
        if contribution < 0.0 && (contribution.abs() * 100.0).round() > 0.0 {
            Direction::Down
        } else {
            Direction::Up
        }
    }
}

/// One column's contribution to a customer's log-odds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Factor {
    /// Explanation group: see [`features::group_name`].
    pub group: usize,
    pub contribution: f64,
}

impl Factor {
    /// Which way this factor pushes the risk, as written (see [`Direction::of`]).
    pub fn direction(&self) -> Direction {
        Direction::of(self.contribution)
    }
}

/// The probability as the scored CSV writes it: rounded to four decimals
/// (halves away from zero). `n / 10_000` is correctly rounded, so this is
/// the same `f64` that parsing the written text gives.
pub fn written_probability(p: f64) -> f64 {
    (p * 10_000.0).round() / 10_000.0
}

/// A customer's score.
#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    pub probability: f64,
    pub risk: RiskLevel,
    /// The log-odds of the average training customer.
    pub baseline: f64,
    /// Every group's contribution; `baseline + Σ contributions = logit`.
    pub contributions: [f64; N_GROUPS],
    /// The largest contributions by size, largest first.
    pub factors: [Factor; N_FACTORS],
}

impl Score {
    /// The log-odds of churn, rebuilt from the explanation.
    pub fn logit(&self) -> f64 {
        self.baseline + self.contributions.iter().sum::<f64>()
    }
}

/// A model ready to score: the model file's parts in per-row form.
#[derive(Debug, Clone)]
pub struct Scorer {
    encoder: Encoder,
    estimator: Estimator,
    additive: Additive,
    thresholds: RiskThresholds,
}

impl Scorer {
    pub fn new(model: &ModelFile) -> Result<Self, ModelError> {
        Self::from_parts(
            &model.preprocessing,
            model.estimator.clone(),
            model.risk_thresholds,
        )
    }

    /// A scorer from a model's parts (used while training).
    pub fn from_parts(
        preprocessing: &Preprocessing,
        estimator: Estimator,
        thresholds: RiskThresholds,
    ) -> Result<Self, ModelError> {
        Ok(Scorer {
            encoder: Encoder::new(preprocessing)
                .map_err(|e| ModelError::Mismatch(e.to_string()))?,
            additive: Additive::new(&estimator, features::feature_groups()),
            estimator,
            thresholds,
        })
    }

    pub fn encoder(&self) -> &Encoder {
        &self.encoder
    }

    /// The model's risk thresholds.
    pub fn thresholds(&self) -> RiskThresholds {
        self.thresholds
    }

    /// The log-odds of churn computed directly, not through the
    /// explanation (for checking that the two agree).
    pub fn direct_logit(&self, row: &CustomerRow) -> f64 {
        let mut x = [0.0; N_FEATURES];
        self.encoder.encode(row, &mut x);
        self.estimator.logit(&x)
    }

    /// Scores and explains one customer.
    pub fn score(&self, row: &CustomerRow) -> Score {
        let mut contributions = [0.0; N_GROUPS];
        let baseline = self
            .additive
            .explain(&self.encoder, row, &mut contributions);
        let probability = sigmoid(baseline + contributions.iter().sum::<f64>());
        Score {
            probability,
            risk: RiskLevel::from_probability(probability, self.thresholds),
            baseline,
            contributions,
            factors: top_factors(&contributions),
        }
    }

    /// How a factor reads to a person: `Contract=Month-to-month (+0.84)`;
    /// an imputed value is marked `[imputed]`.
    pub fn describe(&self, row: &CustomerRow, factor: Factor, out: &mut String) {
        out.clear();
        let g = factor.group;
        let imputed = if g < N_CATEGORIES {
            let level = self.encoder.level(row, g);
            let _ = write!(
                out,
                "{}={}",
                CATEGORIES[g].name,
                CATEGORIES[g].levels[usize::from(level)]
            );
            row.categories[g].is_none()
        } else {
            let (value, imputed) = match g {
                GROUP_TENURE => (row.tenure, false),
                GROUP_MONTHLY => (row.monthly_charges, false),
                _ => (features::total_charges(row), row.total_charges.is_none()),
            };
            out.push_str(features::group_name(g));
            out.push('=');
            push_number(out, value);
            imputed
        };
        if imputed {
            out.push_str(" [imputed]");
        }
        out.push_str(" (");
        push_fixed(out, factor.contribution, 2, true);
        out.push(')');
    }

    /// What a factor is, whatever the customer's number: `Contract=Month-to-month`
    /// for a category (its level, imputed or not), the column name
    /// (`tenure`) for a number. Summaries count factors by this key; see
    /// [`factor_key_of_text`] for the same key read back from the CSV.
    pub fn factor_key(&self, row: &CustomerRow, factor: Factor, out: &mut String) {
        push_factor_key(factor.group, self.factor_level(row, factor), out);
    }

    /// The level a factor's key names: the customer's level of a category
    /// (imputed or not), 0 for a number. With the factor's group it is the
    /// key without its text (see [`push_factor_key`]).
    pub fn factor_level(&self, row: &CustomerRow, factor: Factor) -> usize {
        if factor.group < N_CATEGORIES {
            usize::from(self.encoder.level(row, factor.group))
        } else {
            0
        }
    }
}

/// Writes into `out` (cleared first) the key of `group`'s factor at
/// `level`: `Contract=Month-to-month`, or `tenure` for a number (whose
/// `level` is ignored). See [`Scorer::factor_key`].
pub fn push_factor_key(group: usize, level: usize, out: &mut String) {
    out.clear();
    out.push_str(features::group_name(group));
    if group < N_CATEGORIES {
        out.push('=');
        out.push_str(CATEGORIES[group].levels[level]);
    }
}

/// A factor as [`Scorer::describe`] wrote it, read back: its key (see
/// [`Scorer::factor_key`]) and direction. `None` when the text is not in
/// that form or names no column of this model.
///
/// The text is `NAME=VALUE[ [imputed]] (±C.CC)`; a level may itself hold
/// ` (` (`Bank transfer (automatic)`), so the contribution is the last
/// bracket and the name ends at the first `=` (no column name has one).
pub fn factor_key_of_text(text: &str) -> Option<(&str, Direction)> {
    let (label, contribution) = text.strip_suffix(')')?.rsplit_once(" (")?;
    let direction = match contribution.as_bytes().first()? {
        b'+' => Direction::Up,
        b'-' => Direction::Down,
        _ => return None,
    };
    contribution[1..].parse::<f64>().ok()?;
    let label = label.strip_suffix(" [imputed]").unwrap_or(label);
    let (name, _) = label.split_once('=')?;
    let group = (0..N_GROUPS).find(|&g| features::group_name(g) == name)?;
    Some((if group < N_CATEGORIES { label } else { name }, direction))
}

/// Appends `v` as written in the input: whole numbers without decimals,
/// others in the shortest form that reads back the same.
fn push_number(out: &mut String, v: f64) {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        let _ = write!(out, "{}", v as i64);
    } else {
        let _ = write!(out, "{v}");
    }
}

/// Appends `v` with `decimals` fixed decimals (halves round away from zero),
/// with a `+` or `-` sign when `signed`. Faster than `format!("{:+.2}")`,
/// which matters at hundreds of thousands of rows per second.
fn push_fixed(out: &mut String, v: f64, decimals: u32, signed: bool) {
    let scale = 10u64.pow(decimals);
    let scaled = (v.abs() * scale as f64).round();
    if !scaled.is_finite() || scaled >= 1e15 {
        let _ = write!(out, "{v:.*}", decimals as usize);
        return;
    }
    let n = scaled as u64;
    if signed {
        out.push(if v < 0.0 && n > 0 { '-' } else { '+' });
    } else if v < 0.0 && n > 0 {
        out.push('-');
    }
    // `itoa` rather than `write!`, whose formatting machinery was about a
    // tenth of the worker's samples in `perf`: writing 100,000 scored rows
    // went from 85.6 to 66.0 ms of CPU time (`cargo bench -p
    // retainwise-churn --bench score -- "cpu/score_csv/write only"`).
    let mut digits = itoa::Buffer::new();
    out.push_str(digits.format(n / scale));
    out.push('.');
    let fraction = digits.format(n % scale);
    for _ in fraction.len()..decimals as usize {
        out.push('0');
    }
    out.push_str(fraction);
}

/// The `N_FACTORS` largest contributions by absolute value; ties keep the
/// column order.
fn top_factors(contributions: &[f64; N_GROUPS]) -> [Factor; N_FACTORS] {
    let mut top = [Factor {
        group: 0,
        contribution: 0.0,
    }; N_FACTORS];
    let mut filled = 0;
    for (group, &contribution) in contributions.iter().enumerate() {
        let candidate = Factor {
            group,
            contribution,
        };
        let mut pos = filled;
        while pos > 0 && top[pos - 1].contribution.abs() < contribution.abs() {
            pos -= 1;
        }
        if pos < N_FACTORS {
            let end = filled.min(N_FACTORS - 1);
            top.copy_within(pos..end, pos + 1);
            top[pos] = candidate;
            filled = (filled + 1).min(N_FACTORS);
        }
    }
    top
}

/// Scores every row: the pure core of the worker.
pub fn score_rows(scorer: &Scorer, rows: &[CustomerRow]) -> Vec<Score> {
    rows.iter().map(|row| scorer.score(row)).collect()
}

/// Counts of a scored file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ScoreSummary {
    pub rows: usize,
    pub low_risk: usize,
    pub medium_risk: usize,
    pub high_risk: usize,
}

impl ScoreSummary {
    pub fn of(scores: &[Score]) -> Self {
        let mut s = ScoreSummary::default();
        for score in scores {
            s.add(score.risk);
        }
        s
    }

    /// Counts one more row.
    pub fn add(&mut self, risk: RiskLevel) {
        self.rows += 1;
        match risk {
            RiskLevel::Low => self.low_risk += 1,
            RiskLevel::Medium => self.medium_risk += 1,
            RiskLevel::High => self.high_risk += 1,
        }
    }
}

/// Writes the scored CSV: [`OUTPUT_HEADER`], then one line per row,
/// probability to four decimals. Rows are written as they are given, so a
/// caller can score and write one row at a time.
#[derive(Debug)]
pub struct ScoreWriter<W: io::Write> {
    csv: csv::Writer<W>,
    probability: String,
    factors: [String; N_FACTORS],
}

impl<W: io::Write> ScoreWriter<W> {
    /// Starts the output with its header line.
    pub fn new(out: W) -> io::Result<Self> {
        let mut csv = csv::Writer::from_writer(out);
        csv.write_record(OUTPUT_HEADER)?;
        Ok(ScoreWriter {
            csv,
            probability: String::new(),
            factors: Default::default(),
        })
    }

    /// Writes one scored customer.
    pub fn write(&mut self, scorer: &Scorer, row: &CustomerRow, score: &Score) -> io::Result<()> {
        self.probability.clear();
        push_fixed(&mut self.probability, score.probability, 4, false);
        for (text, factor) in self.factors.iter_mut().zip(score.factors) {
            scorer.describe(row, factor, text);
        }
        self.csv.write_field(&row.customer_id)?;
        self.csv.write_field(&self.probability)?;
        self.csv.write_field(score.risk.as_str())?;
        for text in &self.factors {
            self.csv.write_field(text)?;
        }
        self.csv.write_record(None::<&[u8]>)?;
        Ok(())
    }

    /// Flushes and returns the underlying writer.
    pub fn finish(self) -> io::Result<W> {
        self.csv.into_inner().map_err(|e| e.into_error())
    }
}

/// Writes already computed scores (see [`ScoreWriter`]).
pub fn write_scores<W: io::Write>(
    scorer: &Scorer,
    rows: &[CustomerRow],
    scores: &[Score],
    out: W,
) -> io::Result<()> {
    let mut writer = ScoreWriter::new(out)?;
    for (row, score) in rows.iter().zip(scores) {
        writer.write(scorer, row, score)?;
    }
    writer.finish()?;
    Ok(())
}

/// Why a file could not be scored.
#[derive(Debug, thiserror::Error)]
pub enum ScoreError {
    #[error(transparent)]
    Schema(#[from] SchemaError),
    #[error("writing the scored CSV: {0}")]
    Write(#[from] io::Error),
}

/// Parses the whole input (for scoring: `Churn` is ignored), then scores
/// and writes row by row: a bad row anywhere means nothing is written.
/// Returns the counts and the ingest report.
pub fn score_csv<R: io::Read, W: io::Write>(
    scorer: &Scorer,
    input: R,
    output: W,
) -> Result<(ScoreSummary, IngestReport), ScoreError> {
    let customers = schema::read_customers_for(input, schema::Purpose::Score)?;
    let mut summary = ScoreSummary::default();
    let mut writer = ScoreWriter::new(output)?;
    for row in &customers.rows {
        let score = scorer.score(row);
        summary.add(score.risk);
        writer.write(scorer, row, &score)?;
    }
    writer.finish()?;
    Ok((summary, customers.report))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_factors_are_the_largest_by_size() {
        let mut c = [0.0; N_GROUPS];
        c[3] = 0.5;
        c[7] = -2.0;
        c[10] = 1.0;
        c[12] = -0.7;
        let top = top_factors(&c);
        let groups: Vec<usize> = top.iter().map(|f| f.group).collect();
        assert_eq!(groups, vec![7, 10, 12]);
    }

    #[test]
    fn fixed_formatting_rounds_and_signs() {
        let fixed = |v: f64, d: u32, signed: bool| {
            let mut s = String::new();
            push_fixed(&mut s, v, d, signed);
            s
        };
        assert_eq!(fixed(0.84, 2, true), "+0.84");
        assert_eq!(fixed(-1.234, 2, true), "-1.23");
        assert_eq!(fixed(-0.001, 2, true), "+0.00");
        assert_eq!(fixed(0.73125, 4, false), "0.7313");
        assert_eq!(fixed(1.0, 4, false), "1.0000");
        assert_eq!(fixed(0.00004, 4, false), "0.0000");
        assert_eq!(fixed(0.0005, 4, false), "0.0005");
        assert_eq!(fixed(-12.05, 2, true), "-12.05");
        // The digits are laid out as `write!("{}.{:0w$}")` lays them out.
        for k in 0..20_000u64 {
            let v = k as f64 * 0.000_731;
            let n = (v * 10_000.0).round() as u64;
            let expected = format!("{}.{:04}", n / 10_000, n % 10_000);
            assert_eq!(fixed(v, 4, false), expected, "{v}");
        }
        let mut s = String::new();
        push_number(&mut s, 2.0);
        s.push(' ');
        push_number(&mut s, 70.35);
        assert_eq!(s, "2 70.35");
    }

    #[test]
    fn factor_texts_read_back_to_their_keys() {
        for (text, expected) in [
            (
                "Contract=Month-to-month (+0.84)",
                Some(("Contract=Month-to-month", Direction::Up)),
            ),
            (
                "PaymentMethod=Bank transfer (automatic) (-0.12)",
                Some(("PaymentMethod=Bank transfer (automatic)", Direction::Down)),
            ),
            (
                "TotalCharges=1397.5 [imputed] (+0.30)",
                Some(("TotalCharges", Direction::Up)),
            ),
            ("tenure=2 (+0.00)", Some(("tenure", Direction::Up))),
            ("Nonsense=1 (+0.30)", None),
            ("tenure=2", None),
            ("tenure=2 (0.30)", None),
        ] {
            assert_eq!(factor_key_of_text(text), expected, "{text}");
        }
    }

    #[test]
    fn directions_and_probabilities_are_those_written() {
        for (contribution, text) in [(0.84, "+0.84"), (-0.004, "+0.00"), (-0.005, "-0.01")] {
            let mut written = String::new();
            push_fixed(&mut written, contribution, 2, true);
            assert_eq!(written, text);
            let read_back = if text.starts_with('-') {
                Direction::Down
            } else {
                Direction::Up
            };
            assert_eq!(Direction::of(contribution), read_back, "{contribution}");
        }
        for i in 0..=100_000u32 {
            let p = f64::from(i) / 100_000.0 + 1e-7;
            let mut written = String::new();
            push_fixed(&mut written, p, 4, false);
            assert_eq!(
                written.parse::<f64>().expect("a number"),
                written_probability(p),
                "{p}"
            );
        }
    }

    #[test]
    fn risk_levels_follow_the_thresholds() {
        let t = RiskThresholds {
            medium: 0.3,
            high: 0.6,
        };
        assert_eq!(RiskLevel::from_probability(0.29, t), RiskLevel::Low);
        assert_eq!(RiskLevel::from_probability(0.3, t), RiskLevel::Medium);
        assert_eq!(RiskLevel::from_probability(0.6, t), RiskLevel::High);
    }
}
