//! The summary of a scored file: what a prediction's page shows without
//! reading the file again — counts by risk level, the mean probability, a
//! histogram, how often each factor is among a customer's top three, and
//! the customers most at risk.
//!
//! ```json
//! {"customers": 300, "levels": {"high": 24, "medium": 61, "low": 215},
//!  "mean_probability": 0.2431,
//!  "thresholds": {"medium": 0.3, "high": 0.6},
//!  "histogram": {"bin_width": 0.05, "counts": [31, 40, …, 2]},
//!  "factors": [{"factor": "Contract=Month-to-month", "up": 140, "down": 0}, …],
//!  "top_customers": [{"row": 17, "customer_id": "7590-VHVEG", "churn_probability": 0.9121,
//!                     "risk_level": "high", "factors": ["Contract=Month-to-month (+0.84)", …]}, …],
//!  "top_customers_limit": 200}
//! ```
//!
//! A [`SummaryBuilder`] is fed one scored customer at a time, in file
//! order, and keeps bounded memory: fixed counters, one counter per
//! distinct factor, and a heap of at most [`TOP_CUSTOMERS`] customers.
//! The worker feeds it while scoring ([`SummaryBuilder::add_score`]);
//! [`summarise_scored_csv`] feeds it from a scored CSV, for files scored
//! before summaries existed. Both see the file *as written* (probabilities
//! to four decimals, factor directions by their written sign), so they give
//! the same summary.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};
use std::io;

use serde::{Deserialize, Serialize};

use crate::features::N_GROUPS;
use crate::model::RiskThresholds;
use crate::schema::{CATEGORIES, CustomerRow};
use crate::score::{
    self, Direction, N_FACTORS, OUTPUT_HEADER, RiskLevel, Score, Scorer, written_probability,
};

/// How many of the highest-risk customers a summary lists.
pub const TOP_CUSTOMERS: usize = 200;
/// Histogram bins over `[0, 1]`.
pub const HISTOGRAM_BINS: usize = 20;
/// Width of a histogram bin, in probability.
pub const BIN_WIDTH: f64 = 0.05;
/// Probabilities are counted in ten-thousandths (the CSV's four decimals),
/// so bins and the mean are exact integer arithmetic.
const BASIS: f64 = 10_000.0;
const BIN_BASIS: u64 = 500;

/// Customers per risk level.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Levels {
    pub high: u64,
    pub medium: u64,
    pub low: u64,
}

/// Churn probabilities in [`HISTOGRAM_BINS`] bins: bin `i` holds
/// `[i × bin_width, (i + 1) × bin_width)`, and probability 1 is in the last.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    pub bin_width: f64,
    pub counts: [u64; HISTOGRAM_BINS],
}

/// How often a factor is among a customer's top three, by direction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FactorCount {
    /// `Contract=Month-to-month` for a category's level, `tenure` for a
    /// number (see [`Scorer::factor_key`]).
    pub factor: String,
    /// Customers for whom it raised the risk.
    pub up: u64,
    /// Customers for whom it lowered the risk.
    pub down: u64,
}

/// One of the customers most at risk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopCustomer {
    /// 1-based position in the scored CSV (file order).
    pub row: u64,
    pub customer_id: String,
    /// As written, to four decimals.
    pub churn_probability: f64,
    pub risk_level: RiskLevel,
    /// The three factors as written (`Contract=Month-to-month (+0.84)`).
    pub factors: Vec<String>,
}

/// A scored file's summary (the JSON in the module docs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub customers: u64,
    pub levels: Levels,
    /// Mean of the written probabilities; 0 for a file without customers.
    pub mean_probability: f64,
    /// The model's cut-offs: `medium` from `thresholds.medium`, `high` from
    /// `thresholds.high`.
    pub thresholds: RiskThresholds,
    pub histogram: Histogram,
    /// Most frequent first (`up + down`), then by name.
    pub factors: Vec<FactorCount>,
    /// The [`TOP_CUSTOMERS`] highest probabilities, highest first; equal
    /// probabilities in file order.
    pub top_customers: Vec<TopCustomer>,
    /// [`TOP_CUSTOMERS`], so a reader knows the list may be cut.
    pub top_customers_limit: usize,
}

/// One of a customer's three factors, as the builder counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FactorRef<'a> {
    /// See [`FactorCount::factor`].
    pub key: &'a str,
    pub direction: Direction,
}

/// One scored customer, fed to [`SummaryBuilder::add`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoredRow<'a> {
    pub customer_id: &'a str,
    /// Rounded to four decimals by the builder, as the CSV writes it.
    pub probability: f64,
    pub risk: RiskLevel,
    pub factors: [FactorRef<'a>; N_FACTORS],
}

/// A candidate for the top list; ordered by probability, then earlier rows
/// first (an earlier row is "greater", so it survives a tie).
#[derive(Debug)]
struct Ranked {
    basis_points: u64,
    row: u64,
    customer: TopCustomer,
}

impl Ranked {
    fn key(&self) -> (u64, Reverse<u64>) {
        (self.basis_points, Reverse(self.row))
    }
}

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}
impl Eq for Ranked {}
impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(&other.key())
    }
}

/// Adds one customer to `counts` (up, down).
fn count(counts: &mut (u64, u64), direction: Direction) {
    match direction {
        Direction::Up => counts.0 += 1,
        Direction::Down => counts.1 += 1,
    }
}

/// Builds a [`Summary`] one customer at a time, in bounded memory.
#[derive(Debug)]
pub struct SummaryBuilder {
    thresholds: RiskThresholds,
    customers: u64,
    levels: Levels,
    basis_point_sum: u64,
    counts: [u64; HISTOGRAM_BINS],
    factors: HashMap<Box<str>, (u64, u64)>,
    /// What [`SummaryBuilder::add_score`] counts, by group and level (see
    /// [`Scorer::factor_level`]), merged into `factors` by
    /// [`SummaryBuilder::finish`]. Counting by index rather than by key
    /// text (building each key, hashing it with SipHash, comparing it)
    /// took the summary of 100,000 scored rows from 27.2 to 8.2 ms of CPU
    /// time (`cargo bench -p retainwise-churn --bench score --
    /// "cpu/score_csv/summary only"`, one after the other).
    factor_slots: [[(u64, u64); MAX_LEVELS]; N_GROUPS],
    /// A min-heap of the best so far: its top is the first to drop out.
    top: BinaryHeap<Reverse<Ranked>>,
}

/// The most levels a category has.
const MAX_LEVELS: usize = {
    let mut most = 1;
    let mut i = 0;
    while i < CATEGORIES.len() {
        if CATEGORIES[i].levels.len() > most {
            most = CATEGORIES[i].levels.len();
        }
        i += 1;
    }
    most
};

impl SummaryBuilder {
    /// An empty summary for a model with these thresholds.
    pub fn new(thresholds: RiskThresholds) -> Self {
        SummaryBuilder {
            thresholds,
            customers: 0,
            levels: Levels::default(),
            basis_point_sum: 0,
            counts: [0; HISTOGRAM_BINS],
            factors: HashMap::new(),
            factor_slots: [[(0, 0); MAX_LEVELS]; N_GROUPS],
            top: BinaryHeap::with_capacity(TOP_CUSTOMERS + 1),
        }
    }

    /// Counts the next customer in file order. `texts` gives the three
    /// factors as written; it is called only when the customer enters the
    /// top list, so most rows cost no allocation.
    pub fn add(&mut self, row: ScoredRow<'_>, texts: impl FnOnce() -> [String; N_FACTORS]) {
        for factor in row.factors {
            let counts = match self.factors.get_mut(factor.key) {
                Some(counts) => counts,
                None => self.factors.entry(factor.key.into()).or_default(),
            };
            count(counts, factor.direction);
        }
        self.add_customer(row.customer_id, row.probability, row.risk, texts);
    }

    /// Counts a customer straight from the scorer: keys and directions come
    /// from the model's explanation, not from parsing the written text.
    pub fn add_score(&mut self, scorer: &Scorer, row: &CustomerRow, score: &Score) {
        for factor in score.factors {
            let slot = &mut self.factor_slots[factor.group][scorer.factor_level(row, factor)];
            count(slot, factor.direction());
        }
        self.add_customer(
            &row.customer_id,
            written_probability(score.probability),
            score.risk,
            || {
                score.factors.map(|factor| {
                    let mut text = String::new();
                    scorer.describe(row, factor, &mut text);
                    text
                })
            },
        );
    }

    /// Everything but the factors: levels, the histogram, the mean and the
    /// top list.
    fn add_customer(
        &mut self,
        customer_id: &str,
        probability: f64,
        risk: RiskLevel,
        texts: impl FnOnce() -> [String; N_FACTORS],
    ) {
        self.customers += 1;
        let position = self.customers;
        match risk {
            RiskLevel::High => self.levels.high += 1,
            RiskLevel::Medium => self.levels.medium += 1,
            RiskLevel::Low => self.levels.low += 1,
        }
        // Clamped so that a bad caller cannot index out of the bins.
        let basis_points = (probability.clamp(0.0, 1.0) * BASIS).round() as u64;
        self.basis_point_sum += basis_points;
        self.counts[((basis_points / BIN_BASIS) as usize).min(HISTOGRAM_BINS - 1)] += 1;
        let key = (basis_points, Reverse(position));
        if self.top.len() == TOP_CUSTOMERS
            && self
                .top
                .peek()
                .is_some_and(|Reverse(lowest)| key <= lowest.key())
        {
            return;
        }
        self.top.push(Reverse(Ranked {
            basis_points,
            row: position,
            customer: TopCustomer {
                row: position,
                customer_id: customer_id.to_owned(),
                churn_probability: basis_points as f64 / BASIS,
                risk_level: risk,
                factors: texts().into(),
            },
        }));
        if self.top.len() > TOP_CUSTOMERS {
            self.top.pop();
        }
    }

    /// The summary of everything added.
    pub fn finish(mut self) -> Summary {
        let mut key = String::new();
        for (group, levels) in self.factor_slots.iter().enumerate() {
            for (level, &(up, down)) in levels.iter().enumerate() {
                if up + down > 0 {
                    score::push_factor_key(group, level, &mut key);
                    let counts = self.factors.entry(key.as_str().into()).or_default();
                    counts.0 += up;
                    counts.1 += down;
                }
            }
        }
        let mean_probability = if self.customers == 0 {
            0.0
        } else {
            self.basis_point_sum as f64 / self.customers as f64 / BASIS
        };
        let mut factors: Vec<FactorCount> = self
            .factors
            .into_iter()
            .map(|(factor, (up, down))| FactorCount {
                factor: factor.into(),
                up,
                down,
            })
            .collect();
        factors.sort_by(|a, b| {
            (b.up + b.down)
                .cmp(&(a.up + a.down))
                .then_with(|| a.factor.cmp(&b.factor))
        });
        // Ascending order of `Reverse` is descending order of rank.
        let top_customers = self
            .top
            .into_sorted_vec()
            .into_iter()
            .map(|Reverse(ranked)| ranked.customer)
            .collect();
        Summary {
            customers: self.customers,
            levels: self.levels,
            mean_probability,
            thresholds: self.thresholds,
            histogram: Histogram {
                bin_width: BIN_WIDTH,
                counts: self.counts,
            },
            factors,
            top_customers,
            top_customers_limit: TOP_CUSTOMERS,
        }
    }
}

/// Why a scored CSV could not be summarised.
#[derive(Debug, thiserror::Error)]
pub enum SummaryError {
    #[error("reading the scored CSV: {0}")]
    Io(#[from] io::Error),
    #[error("the scored CSV is malformed at line {line}: {message}")]
    Malformed { line: u64, message: String },
}

/// Summarises a scored CSV ([`OUTPUT_HEADER`]) as the worker would have
/// while writing it, for files scored before summaries existed. Reads the
/// file once, in bounded memory.
pub fn summarise_scored_csv<R: io::Read>(
    input: R,
    thresholds: RiskThresholds,
) -> Result<Summary, SummaryError> {
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(input);
    let mut record = csv::StringRecord::new();
    let malformed = |record: &csv::StringRecord, message: String| SummaryError::Malformed {
        line: record.position().map_or(0, |p| p.line()),
        message,
    };
    let read = |csv: &mut csv::Reader<R>, record: &mut csv::StringRecord| {
        csv.read_record(record).map_err(|e| match e.into_kind() {
            csv::ErrorKind::Io(e) => SummaryError::Io(e),
            other => SummaryError::Malformed {
                line: 0,
                message: format!("{other:?}"),
            },
        })
    };
    if !read(&mut csv, &mut record)? || record.iter().ne(OUTPUT_HEADER) {
        return Err(malformed(
            &record,
            "the header is not the scored CSV's".into(),
        ));
    }
    let mut builder = SummaryBuilder::new(thresholds);
    while read(&mut csv, &mut record)? {
        let field = |i: usize| record.get(i).unwrap_or_default();
        if record.len() != OUTPUT_HEADER.len() {
            return Err(malformed(
                &record,
                format!("{} fields, expected {}", record.len(), OUTPUT_HEADER.len()),
            ));
        }
        let probability = field(1)
            .parse::<f64>()
            .ok()
            .filter(|p| (0.0..=1.0).contains(p))
            .ok_or_else(|| malformed(&record, format!("bad probability {:?}", field(1))))?;
        let risk = RiskLevel::parse(field(2))
            .ok_or_else(|| malformed(&record, format!("bad risk level {:?}", field(2))))?;
        let mut factors = [FactorRef {
            key: "",
            direction: Direction::Up,
        }; N_FACTORS];
        for (i, slot) in factors.iter_mut().enumerate() {
            let text = field(3 + i);
            let (key, direction) = score::factor_key_of_text(text)
                .ok_or_else(|| malformed(&record, format!("bad factor {text:?}")))?;
            *slot = FactorRef { key, direction };
        }
        builder.add(
            ScoredRow {
                customer_id: field(0),
                probability,
                risk,
                factors,
            },
            || {
                [
                    field(3).to_owned(),
                    field(4).to_owned(),
                    field(5).to_owned(),
                ]
            },
        );
    }
    Ok(builder.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    const THRESHOLDS: RiskThresholds = RiskThresholds {
        medium: 0.3,
        high: 0.6,
    };

    fn up(key: &str) -> FactorRef<'_> {
        FactorRef {
            key,
            direction: Direction::Up,
        }
    }

    fn down(key: &str) -> FactorRef<'_> {
        FactorRef {
            key,
            direction: Direction::Down,
        }
    }

    fn add(b: &mut SummaryBuilder, id: &str, p: f64) {
        b.add(
            ScoredRow {
                customer_id: id,
                probability: p,
                risk: RiskLevel::from_probability(p, THRESHOLDS),
                factors: [
                    up("tenure"),
                    down("Contract=Two year"),
                    up("MonthlyCharges"),
                ],
            },
            || {
                [
                    "tenure=1 (+1.00)".into(),
                    "Contract=Two year (-0.50)".into(),
                    "MonthlyCharges=90 (+0.20)".into(),
                ]
            },
        );
    }

    #[test]
    fn an_empty_file_has_an_empty_summary() {
        let s = SummaryBuilder::new(THRESHOLDS).finish();
        assert_eq!(s.customers, 0);
        assert_eq!(s.levels, Levels::default());
        assert_eq!(s.mean_probability, 0.0);
        assert_eq!(s.histogram.counts, [0; HISTOGRAM_BINS]);
        assert!(s.factors.is_empty() && s.top_customers.is_empty());
        assert_eq!(s.thresholds, THRESHOLDS);
        assert_eq!(s.top_customers_limit, TOP_CUSTOMERS);
    }

    #[test]
    fn bins_are_half_open_and_one_is_in_the_last() {
        let mut b = SummaryBuilder::new(THRESHOLDS);
        for p in [0.0, 0.0499, 0.05, 0.15, 0.95, 0.9999, 1.0] {
            add(&mut b, "c", p);
        }
        let s = b.finish();
        let mut expected = [0; HISTOGRAM_BINS];
        expected[0] = 2;
        expected[1] = 1;
        expected[3] = 1; // 0.15 / 0.05 is 2.999… in floating point
        expected[19] = 3;
        assert_eq!(s.histogram.counts, expected);
        assert_eq!(s.levels.high, 3);
        assert_eq!(s.levels.low, 4);
    }

    #[test]
    fn ties_keep_file_order_and_the_list_is_bounded() {
        let mut b = SummaryBuilder::new(THRESHOLDS);
        // 1,000 customers: probabilities cycle over 0.0000..0.0099 and
        // customer 500 alone is certain.
        for i in 0..1000u64 {
            let p = if i == 499 {
                1.0
            } else {
                (i % 100) as f64 / 10_000.0
            };
            add(&mut b, &format!("c{i}"), p);
        }
        let s = b.finish();
        assert_eq!(s.customers, 1000);
        assert_eq!(s.top_customers.len(), TOP_CUSTOMERS);
        assert_eq!(s.top_customers[0].row, 500);
        assert_eq!(s.top_customers[0].churn_probability, 1.0);
        // Then 0.0099 nine times (rows 100, 200, …, 1000 but 500), earliest
        // first, then the first 0.0098.
        let next: Vec<u64> = s.top_customers[1..11].iter().map(|c| c.row).collect();
        assert_eq!(next, [100, 200, 300, 400, 600, 700, 800, 900, 1000, 99]);
        for pair in s.top_customers.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            assert!(
                a.churn_probability > b.churn_probability
                    || (a.churn_probability == b.churn_probability && a.row < b.row),
                "{a:?} before {b:?}"
            );
        }
        assert_eq!(s.top_customers[0].factors.len(), N_FACTORS);
        assert_eq!(s.factors[0].factor, "Contract=Two year");
        assert_eq!((s.factors[0].up, s.factors[0].down), (0, 1000));
        assert_eq!(s.factors[1].factor, "MonthlyCharges", "ties by name");
    }

    #[test]
    fn factor_texts_are_built_only_for_the_top_list() {
        let mut b = SummaryBuilder::new(THRESHOLDS);
        let mut built = 0;
        for i in 0..10_000u64 {
            // Rising probabilities: every row enters, so every text is built.
            // Falling ones: only the first TOP_CUSTOMERS.
            let p = 1.0 - i as f64 / 10_000.0;
            b.add(
                ScoredRow {
                    customer_id: "c",
                    probability: p,
                    risk: RiskLevel::Low,
                    factors: [up("a"), up("b"), up("c")],
                },
                || {
                    built += 1;
                    Default::default()
                },
            );
        }
        assert_eq!(built, TOP_CUSTOMERS);
        assert_eq!(b.top.len(), TOP_CUSTOMERS);
    }

    #[test]
    fn the_mean_is_of_the_written_probabilities() {
        let mut b = SummaryBuilder::new(THRESHOLDS);
        add(&mut b, "a", 0.12344);
        add(&mut b, "b", 0.12346);
        let s = b.finish();
        assert_eq!(s.mean_probability, (0.1234 + 0.1235) / 2.0);
        assert_eq!(s.top_customers[0].churn_probability, 0.1235);
    }

    #[test]
    fn the_json_has_the_documented_shape() {
        let mut b = SummaryBuilder::new(THRESHOLDS);
        add(&mut b, "7590-VHVEG", 0.75);
        let text = serde_json::to_string(&b.finish()).expect("serialises");
        let at = |key: &str| text.find(&format!("\"{key}\":")).expect(key);
        let order = [
            "customers",
            "levels",
            "mean_probability",
            "thresholds",
            "histogram",
            "factors",
            "top_customers",
            "top_customers_limit",
        ];
        assert!(order.windows(2).all(|w| at(w[0]) < at(w[1])), "{text}");
        let json: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(json.as_object().expect("object").len(), order.len());
        assert_eq!(
            json["levels"],
            serde_json::json!({"high": 1, "medium": 0, "low": 0})
        );
        assert_eq!(
            json["thresholds"],
            serde_json::json!({"medium": 0.3, "high": 0.6})
        );
        assert_eq!(json["histogram"]["bin_width"], 0.05);
        assert_eq!(json["histogram"]["counts"][15], 1);
        assert_eq!(
            json["top_customers"][0],
            serde_json::json!({"row": 1, "customer_id": "7590-VHVEG", "churn_probability": 0.75,
                "risk_level": "high", "factors": ["tenure=1 (+1.00)", "Contract=Two year (-0.50)",
                "MonthlyCharges=90 (+0.20)"]})
        );
        assert_eq!(
            json["factors"][0],
            serde_json::json!({"factor": "Contract=Two year", "up": 0, "down": 1})
        );
        let back: Summary = serde_json::from_value(json).expect("reads back");
        assert_eq!(back.customers, 1);
    }

    #[test]
    fn a_scored_csv_that_is_not_one_is_refused() {
        let bad_header = summarise_scored_csv(&b"a,b\n1,2\n"[..], THRESHOLDS);
        assert!(matches!(bad_header, Err(SummaryError::Malformed { .. })));
        let header = OUTPUT_HEADER.join(",");
        let bad_factor = format!("{header}\nc1,0.5000,medium,tenure=1 (+1.00),oops,x (+1)\n");
        let err = summarise_scored_csv(bad_factor.as_bytes(), THRESHOLDS).expect_err("refused");
        assert!(err.to_string().contains("line 2"), "{err}");
        let empty = summarise_scored_csv(format!("{header}\n").as_bytes(), THRESHOLDS)
            .expect("a header alone is an empty file");
        assert_eq!(empty.customers, 0);
    }
}
