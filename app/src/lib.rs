//! # retainwise-app: the RetainWise churn service
//!
//! Takes customer CSVs over HTTP, queues a churn prediction, scores every
//! row in a worker and serves the scored CSV; and the `retainwise-app`
//! command line (`train`, `evaluate`, `score`, `compare`, `serve`,
//! `worker`, `migrate`, `healthcheck`). The model itself (reading CSVs,
//! training, scoring) is the `retainwise_churn` crate; this crate gives it
//! files, storage, a database, a queue and an HTTP API.
//!
//! ## What it does
//! - Accepts uploads on `POST /api/uploads`, checks them while streaming
//!   them to storage ([`ingest`], [`http`]), and records each upload and
//!   prediction per user ([`db`]: SQLite or PostgreSQL).
//! - Queues predictions ([`queue`]: the database or SQS) for a worker that
//!   scores them with the shipped model ([`worker`], [`scoring`]) and
//!   stores the result ([`storage`]: a directory or S3).
//! - Exposes its health and Prometheus metrics ([`metrics`],
//!   [`healthcheck`]) and reads its settings from `APP_*` variables
//!   ([`settings`]).
//! - Runs the model's offline commands on local files ([`cli`]).
//!
//! ## What it refuses to do
//! - Trust anything but the proxy: the caller is whatever `X-User-Id` says,
//!   so it listens on loopback unless told the exposure is deliberate, and
//!   another user's upload or prediction is a 404.
//! - Queue a file the model would refuse: the upload is parsed before it is
//!   accepted, with the same reader the worker uses.
//! - See a token or a credential.
//!
//! ## Design
//! ```text
//!  proxy ──X-User-Id──▶ http ──▶ ingest ──▶ storage (uploads/ID.csv)
//!                                  │  └──▶ db (uploads, predictions)
//!                                  └──▶ queue ──▶ worker ──▶ scoring ──▶ storage (results/ID.csv), db
//! ```
//! [`startup`] wires the parts from [`settings`]; [`commands`] and [`cli`]
//! are the binary's entry points.
#![forbid(unsafe_code)]

pub mod cli;
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
pub mod web;
pub mod worker;
