//! The job queue, behind one trait: a table in the app's database
//! ([`db::DbQueue`], the default) or SQS ([`sqs::SqsQueue`]).
//!
//! Semantics both keep: at-least-once delivery. A received job is hidden
//! (lease / visibility timeout) until the worker acknowledges it, extends
//! the lease while it runs, or asks for a retry later. A worker that dies
//! stops extending, and the job comes back to another worker. The message
//! carries only the prediction id; everything else is in the database.
//!
//! | | table queue | SQS |
//! |---|---|---|
//! | hide while running | `visible_at = now + lease`, a `lease_token` | visibility timeout, receipt handle |
//! | attempt number | `attempts` column | `ApproximateReceiveCount` |
//! | give up | `dead_at` set, kept for inspection | left to the redrive policy: the dead-letter queue |

pub mod db;
pub mod sqs;

use std::fmt::Debug;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

use crate::domain::PredictionId;

/// One received job.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub prediction_id: PredictionId,
    /// 1 on first delivery.
    pub attempt: u32,
    /// Proof of the lease: the job id and lease token, or the SQS receipt.
    pub receipt: String,
    pub enqueued_at: Option<SystemTime>,
}

/// What is waiting in the queue, for the queue gauges
/// ([`crate::metrics::queue_backlog`]). `None` where the backend cannot
/// tell cheaply: SQS has no API for the oldest message's age (its
/// CloudWatch metric `ApproximateAgeOfOldestMessage` has it), and its
/// dead letters are in another queue the app does not know.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Backlog {
    /// Jobs visible now, waiting for a worker (not the running ones).
    pub waiting: Option<u64>,
    /// Time since the oldest waiting job was queued; zero when none waits.
    pub oldest_age: Option<Duration>,
    /// Jobs that used every attempt and are kept for an operator.
    pub dead: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("queue database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("SQS: {0}")]
    Sqs(String),
    #[error("malformed message {0:?}")]
    Malformed(String),
}

#[async_trait]
pub trait Queue: Send + Sync + Debug {
    /// Queues a job for `prediction`.
    async fn enqueue(&self, prediction: PredictionId) -> Result<(), QueueError>;
    /// Up to `max` jobs; may wait a while (long polling) when there are none.
    async fn receive(&self, max: usize) -> Result<Vec<Delivery>, QueueError>;
    /// Keeps the job hidden for another lease period.
    async fn extend(&self, delivery: &Delivery) -> Result<(), QueueError>;
    /// Done (completed, or failed for good): the job is removed.
    async fn ack(&self, delivery: &Delivery) -> Result<(), QueueError>;
    /// Try again after `delay`.
    async fn retry_later(&self, delivery: &Delivery, delay: Duration) -> Result<(), QueueError>;
    /// Every attempt failed: off to the dead letters.
    async fn dead_letter(&self, delivery: &Delivery) -> Result<(), QueueError>;
    /// Shutting down before the job finished: visible again at once.
    async fn release(&self, delivery: &Delivery) -> Result<(), QueueError> {
        self.retry_later(delivery, Duration::ZERO).await
    }
    /// The limit on deliveries the queue itself enforces, if any (the SQS
    /// redrive policy's `maxReceiveCount`).
    fn max_receives(&self) -> Option<u32> {
        None
    }
    /// What is waiting now (see [`Backlog`]); one cheap query.
    async fn backlog(&self) -> Result<Backlog, QueueError>;
}
