//! # retainwise-churn: the RetainWise churn model
//!
//! Scores each customer's risk of churning, with the reasons behind it:
//! reading customer CSVs in the IBM Telco churn layout, training,
//! evaluation and scoring. The service (`retainwise-app`: command line,
//! upload API, worker) builds a [`score::Scorer`] once from
//! [`model::ModelFile::shipped`], then calls [`score::score_csv`] (parse
//! everything, then score and write row by row), or the parts:
//! [`schema::read_customers`] / [`schema::CustomerReader`], the pure
//! [`score::score_rows`], and [`score::ScoreWriter`].
//!
//! ## What it does
//! - Reads customer files as people export them ([`reader`]): UTF-8 or
//!   UTF-16 CSV with `,`, `;` or tab, gzip, the first sheet of an `.xlsx`
//!   ([`decode`], [`xlsx`]), with line numbers as an editor shows them and
//!   bounded fields and records ([`records`]); forgiving headers
//!   (`customerID`, `customer_id`, `Customer Id`) and strict values
//!   ([`schema`]); and says what it made of the file ([`report`]).
//! - Trains a seeded, reproducible model: logistic regression, shallow
//!   gradient-boosted trees, or a blend of both ([`train`]), on a
//!   stratified split by customer that keeps a test part unseen ([`split`]).
//! - Writes the model as versioned JSON ([`model`]) and ships one,
//!   `app/churn/model/churn-model.json`, compiled into the crate
//!   ([`model::ModelFile::shipped`]).
//! - Scores rows to a probability, a risk level and the three factors
//!   behind it, exactly: baseline + contributions = logit ([`score`]).
//! - Summarises a scored file in bounded memory while it is written, or
//!   later from the written CSV: level counts, histogram, factor counts,
//!   the customers most at risk ([`summary`]).
//! - Measures models: ROC AUC, PR AUC, log loss, Brier, calibration
//!   ([`evaluate`]).
//!
//! ## What it refuses to do
//! - Guess at bad input: an unknown category, a negative or non-numeric
//!   number, a missing required column, a repeated customer id (when
//!   scoring), an unclosed quote is an error naming row and line, never a
//!   silently imputed value or a swallowed row. Only *absent* optional values are
//!   imputed, the way training did.
//! - Score with a model file written for a different feature layout or
//!   schema version.
//! - Use threads, clocks or unseeded randomness in training: the same data
//!   and seed give the same model file, byte for byte.
//! - Do I/O of its own: it reads and writes only the [`std::io::Read`] and
//!   [`std::io::Write`] values and byte slices it is handed. Files,
//!   storage, databases, queues and HTTP belong to the service.
//! - Touch tokens or users: the model never sees a credential.
//!
//! ## Design
//! ```text
//!  CSV bytes ─▶ schema ─▶ CustomerRow ─▶ features ─▶ [f64; N] ─▶ estimator ─▶ score ─▶ CSV
//!                                          ▲ preprocessing        ▲ weights/trees
//!                                          └──── model file (JSON) ┘
//! ```
//! Everything is pure functions over bytes, rows and structs. Scoring folds
//! the estimator ([`logistic`], [`boost`]) into per-column lookup tables
//! once per model ([`additive`]), so a row costs table look-ups, not a walk
//! over hundreds of trees, and its explanation comes out of the same sums.
#![forbid(unsafe_code)]

pub mod additive;
pub mod boost;
pub mod decode;
pub mod evaluate;
pub mod features;
pub mod logistic;
pub mod model;
pub mod reader;
pub mod records;
pub mod report;
pub mod schema;
pub mod score;
pub mod split;
pub mod summary;
pub mod train;
pub mod xlsx;
