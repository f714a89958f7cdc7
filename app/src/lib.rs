//! # RetainWise app: the churn model
//!
//! Scores each customer's risk of churning, with the reasons behind it.
//! Today this crate is the model: training, evaluation and scoring of
//! customer CSVs in the IBM Telco churn layout. The upload API and the
//! worker (next) build a [`score::Scorer`] once from
//! [`model::ModelFile::shipped`], then call [`score::score_csv`] (parse
//! everything, then score and write row by row), or the parts:
//! [`schema::read_customers`], the pure [`score::score_rows`], and
//! [`score::ScoreWriter`].
//!
//! ## What it does
//! - Reads customer CSVs with forgiving headers (`customerID`,
//!   `customer_id`, `Customer Id`) and strict values ([`schema`]).
//! - Trains a seeded, reproducible model: logistic regression, shallow
//!   gradient-boosted trees, or a blend of both ([`train`]), on a
//!   stratified split by customer that keeps a test part unseen ([`split`]).
//! - Writes the model as versioned JSON ([`model`]) and ships one,
//!   compiled into the binary ([`model::ModelFile::shipped`]).
//! - Scores rows to a probability, a risk level and the three factors
//!   behind it, exactly: baseline + contributions = logit ([`score`]).
//! - Measures models: ROC AUC, PR AUC, log loss, Brier, calibration
//!   ([`evaluate`]).
//!
//! ## What it refuses to do
//! - Guess at bad input: an unknown category, a negative or non-numeric
//!   number, a missing required column is an error naming row and column,
//!   never a silently imputed value. Only *absent* optional values are
//!   imputed, the way training did.
//! - Score with a model file written for a different feature layout or
//!   schema version.
//! - Use threads, clocks or unseeded randomness in training: the same data
//!   and seed give the same model file, byte for byte.
//! - Touch tokens or users: the app never sees a credential.
//!
//! ## Design
//! ```text
//!  CSV bytes ─▶ schema ─▶ CustomerRow ─▶ features ─▶ [f64; N] ─▶ estimator ─▶ score ─▶ CSV
//!                                          ▲ preprocessing        ▲ weights/trees
//!                                          └──── model file (JSON) ┘
//! ```
//! I/O stays at the edges ([`cli`]); everything else is pure functions over
//! bytes, rows and structs.
#![forbid(unsafe_code)]

pub mod additive;
pub mod boost;
pub mod cli;
pub mod evaluate;
pub mod features;
pub mod logistic;
pub mod model;
pub mod records;
pub mod decode;
pub mod xlsx;
pub mod schema;
pub mod score;
pub mod split;
pub mod train;
// The service: upload API, database, storage, queue and worker.
pub mod commands;
pub mod db;
pub mod domain;
pub mod healthcheck;
pub mod http;
pub mod ingest;
pub mod io_bridge;
pub mod metrics;
pub mod queue;
pub mod scoring;
pub mod settings;
pub mod startup;
pub mod storage;
pub mod telemetry;
pub mod worker;
