//! One job: score an upload into the result CSV and record it, then settle
//! the job with the queue. Recording sets values (never adds), the output
//! key is fixed per prediction, and the job is acknowledged only after the
//! record: a redelivered job rewrites the same output and counts once. The
//! summary is built in the scoring pass and recorded with the counts.

use std::io;
use std::time::Instant;

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::Worker;
use crate::db::predictions::Completion;
use crate::domain::Status;
use crate::io_bridge::{CHANNEL_CHUNKS, ChannelReader, ChannelWriter};
use crate::metrics;
use crate::queue::Delivery;
use crate::scoring::ScoringError;
use crate::storage::result_key;

/// Why a job did not complete.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The file is wrong; retrying cannot help.
    #[error("{0}")]
    Data(String),
    /// Storage, database or network trouble; another attempt may succeed.
    #[error("{0}")]
    Transient(String),
    #[error("internal error while scoring (the job panicked): {0}")]
    Panic(String),
}

#[derive(Debug)]
pub enum JobOutcome {
    /// Scored and recorded: the counts, for the log line.
    Completed {
        rows: u64,
        high_risk: u64,
    },
    /// Nothing to do: unknown prediction, or one already settled.
    Skipped(&'static str),
    Failed(JobError),
}

fn transient(what: &str) -> impl FnOnce(String) -> JobError + '_ {
    move |e| JobError::Transient(format!("{what}: {e}"))
}

impl Worker {
    /// The largest attempt number that may still run.
    fn max_attempts(&self) -> u32 {
        let own = self.settings.max_attempts;
        self.queue.max_receives().map_or(own, |q| own.min(q))
    }

    pub(super) async fn run_job(&self, delivery: &Delivery) -> JobOutcome {
        match self.try_run_job(delivery).await {
            Ok(outcome) => outcome,
            Err(e) => JobOutcome::Failed(e),
        }
    }

    async fn try_run_job(&self, delivery: &Delivery) -> Result<JobOutcome, JobError> {
        let id = delivery.prediction_id;
        let Some(prediction) = self
            .db
            .prediction(id)
            .await
            .map_err(|e| transient("reading the prediction")(e.to_string()))?
        else {
            return Ok(JobOutcome::Skipped("no such prediction"));
        };
        if matches!(prediction.status, Status::Completed | Status::Failed) {
            return Ok(JobOutcome::Skipped("already settled"));
        }
        if delivery.attempt > self.max_attempts() {
            return Err(JobError::Transient(format!(
                "delivered {} times; the limit is {}",
                delivery.attempt,
                self.max_attempts()
            )));
        }
        self.db
            .mark_running(id, delivery.attempt)
            .await
            .map_err(|e| transient("marking the prediction running")(e.to_string()))?;

        let output_key = result_key(id);
        let input = self
            .storage
            .read(&prediction.object_key)
            .await
            .map_err(|e| transient("reading the upload")(e.to_string()))?;
        let mut writer = self
            .storage
            .writer(&output_key)
            .await
            .map_err(|e| transient("writing the result")(e.to_string()))?;

        let (in_tx, in_rx) = mpsc::channel::<io::Result<Bytes>>(CHANNEL_CHUNKS);
        let (out_tx, mut out_rx) = mpsc::channel::<Bytes>(CHANNEL_CHUNKS);
        let scorer = self.scorer.clone();
        let scoring = tokio::task::spawn_blocking(move || {
            let mut reader = ChannelReader::new(in_rx);
            let mut out = ChannelWriter::new(out_tx);
            scorer.score(&mut reader, &mut out)
        });
        let feed = async move {
            let mut input = input;
            while let Some(chunk) = input.next().await {
                let chunk = chunk.map_err(io::Error::other);
                let failed = chunk.is_err();
                if in_tx.send(chunk).await.is_err() || failed {
                    break;
                }
            }
        };
        let drain = async {
            while let Some(chunk) = out_rx.recv().await {
                writer.write(chunk).await?;
            }
            Ok::<_, crate::storage::StorageError>(())
        };
        let ((), drained) = tokio::join!(feed, drain);
        let scored = match scoring.await {
            Ok(r) => r,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(ScoringError::Io(io::Error::other(e))),
        };
        let summary = match (scored, drained) {
            (Ok(summary), Ok(())) => summary,
            (_, Err(e)) => {
                writer.abort().await;
                return Err(JobError::Transient(format!("writing the result: {e}")));
            }
            (Err(ScoringError::Data(message)), _) => {
                writer.abort().await;
                return Err(JobError::Data(message));
            }
            (Err(ScoringError::Io(e)), _) => {
                writer.abort().await;
                return Err(JobError::Transient(format!("reading the upload: {e}")));
            }
        };
        writer
            .finish()
            .await
            .map_err(|e| transient("finishing the result")(e.to_string()))?;
        let (rows, high_risk) = (summary.customers, summary.levels.high);
        // Stored as the JSON the summary route serves, byte for byte.
        let summary = serde_json::to_string(&summary).expect("a summary always serialises");
        self.db
            .mark_completed(
                id,
                &Completion {
                    output_key: &output_key,
                    rows,
                    high_risk,
                    summary: &summary,
                },
            )
            .await
            .map_err(|e| transient("recording the result")(e.to_string()))?;
        Ok(JobOutcome::Completed { rows, high_risk })
    }

    /// Tells the database and the queue how the job ended.
    pub(super) async fn settle(&self, delivery: &Delivery, outcome: JobOutcome, started: Instant) {
        let id = delivery.prediction_id;
        let result = match outcome {
            JobOutcome::Completed { rows, high_risk } => {
                metrics::job_finished("completed", started.elapsed());
                tracing::info!(
                    rows,
                    high_risk,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "prediction completed"
                );
                self.queue.ack(delivery).await
            }
            JobOutcome::Skipped(why) => {
                tracing::info!(why, "job skipped");
                self.queue.ack(delivery).await
            }
            JobOutcome::Failed(error @ (JobError::Data(_) | JobError::Panic(_))) => {
                metrics::job_finished("failed", started.elapsed());
                tracing::warn!(error = %error, "prediction failed; not retried");
                if let Err(e) = self.db.mark_failed(id, &error.to_string()).await {
                    tracing::error!(error = %e, "recording the failure failed; the job will return");
                    return;
                }
                self.queue.ack(delivery).await
            }
            JobOutcome::Failed(error @ JobError::Transient(_)) => {
                if delivery.attempt >= self.max_attempts() {
                    metrics::job_finished("dead_lettered", started.elapsed());
                    let message = format!("failed after {} attempts: {error}", delivery.attempt);
                    tracing::error!(error = %message, "prediction failed for good");
                    if let Err(e) = self.db.mark_failed(id, &message).await {
                        tracing::error!(error = %e, "recording the failure failed; the job will return");
                        return;
                    }
                    self.queue.dead_letter(delivery).await
                } else {
                    metrics::job_finished("retried", started.elapsed());
                    let delay = self.settings.retry_delay(delivery.attempt);
                    tracing::warn!(error = %error, retry_in_ms = delay.as_millis() as u64, "attempt failed; retrying");
                    let message = format!("attempt {} failed, retrying: {error}", delivery.attempt);
                    if let Err(e) = self.db.mark_retrying(id, &message).await {
                        tracing::warn!(error = %e, "recording the retry failed");
                    }
                    self.queue.retry_later(delivery, delay).await
                }
            }
        };
        if let Err(e) = result {
            tracing::error!(error = %e, "settling the job with the queue failed; it will be redelivered");
        }
    }
}
