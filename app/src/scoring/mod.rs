//! What the service needs from a model: check a whole customer file, and
//! score one into the output CSV, both over blocking readers and writers.
//! The churn model behind it ([`churn::Churn`]) is the `schema` and `score`
//! modules; tests put in models that panic or hang.

pub mod churn;

use std::io::{self, Read, Write};

use retainwise_churn::report::IngestReport;

/// What scoring a file records with the prediction: counts, histogram,
/// factor counts and the customers most at risk, built in the same pass
/// as the output (`retainwise_churn::summary`).
pub use retainwise_churn::summary::Summary;

#[derive(Debug, thiserror::Error)]
pub enum ScoringError {
    /// The file itself is wrong (names the row and column): never retried.
    #[error("{0}")]
    Data(String),
    /// Reading or writing failed: may succeed on another attempt.
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// What checking a whole file found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checked {
    pub rows: u64,
    /// What was made of the file's columns and rows, when the model says.
    pub report: Option<IngestReport>,
}

pub trait FileScorer: Send + Sync + std::fmt::Debug + 'static {
    /// Reads a whole customer file, checking the header and every row;
    /// returns the number of customer rows.
    fn validate(&self, input: &mut dyn Read) -> Result<u64, ScoringError>;
    /// Like [`FileScorer::validate`], with the ingest report.
    fn check(&self, input: &mut dyn Read) -> Result<Checked, ScoringError> {
        Ok(Checked {
            rows: self.validate(input)?,
            report: None,
        })
    }
    /// Scores a customer file into the output CSV, summarising it on the way.
    fn score(&self, input: &mut dyn Read, output: &mut dyn Write) -> Result<Summary, ScoringError>;
    /// Summarises an output CSV that [`FileScorer::score`] wrote, exactly as
    /// scoring would have: for predictions completed before summaries were
    /// stored. A model that cannot read its output back says so.
    fn summarise(&self, output: &mut dyn Read) -> Result<Summary, ScoringError> {
        let _ = output;
        Err(ScoringError::Data(
            "this model cannot summarise a scored file".into(),
        ))
    }
}
