//! The worker: takes jobs from the queue, N at a time, and runs each in its
//! own task so that a panic fails that job, not the worker.
//!
//! ```text
//!  queue ──receive──▶ supervise(job) ──spawn──▶ run_job ─▶ storage, db
//!    ▲                   │  renews the lease every lease/3
//!    └── ack / retry_later / dead_letter / release ◀┘
//! ```
//!
//! Shutdown (SIGTERM): stop receiving, let running jobs finish for the
//! grace period, then release what is left so another worker takes it.

mod job;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::db::Db;
use crate::queue::{Delivery, Queue};
use crate::scoring::FileScorer;
use crate::settings::WorkerSettings;
use crate::storage::Storage;
use crate::{domain::PredictionId, metrics};

pub use job::{JobError, JobOutcome};

/// Everything a job needs.
#[derive(Debug, Clone)]
pub struct Worker {
    pub db: Db,
    pub storage: Storage,
    pub queue: Arc<dyn Queue>,
    pub scorer: Arc<dyn FileScorer>,
    pub settings: WorkerSettings,
}

type InFlight = Arc<Mutex<HashMap<PredictionId, Delivery>>>;

impl Worker {
    /// Runs until `shutdown` turns true, then drains (see the module docs).
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let this = Arc::new(self);
        let slots = Arc::new(Semaphore::new(this.settings.concurrency));
        let in_flight: InFlight = Arc::default();
        let mut tasks = JoinSet::new();
        let mut backoff = this.settings.poll_interval;
        tracing::info!(concurrency = this.settings.concurrency, "worker started");
        let sampler = tokio::spawn(sample_backlog(this.queue.clone()));
        loop {
            if *shutdown.borrow() {
                break;
            }
            // Wait for a free slot, then take as many jobs as there are slots.
            let first = tokio::select! {
                permit = slots.clone().acquire_owned() => permit.expect("never closed"),
                _ = shutdown.changed() => break,
            };
            let free = 1 + slots.available_permits();
            let received = tokio::select! {
                r = this.queue.receive(free) => r,
                _ = shutdown.changed() => break,
            };
            while tasks.try_join_next().is_some() {}
            let deliveries = match received {
                Ok(d) => {
                    backoff = this.settings.poll_interval;
                    d
                }
                Err(e) => {
                    tracing::warn!(error = %e, "receiving jobs failed; retrying");
                    drop(first);
                    sleep_or_shutdown(backoff, &mut shutdown).await;
                    backoff = (backoff * 2).min(
                        crate::settings::MAX_RETRY_DELAY.min(std::time::Duration::from_secs(10)),
                    );
                    continue;
                }
            };
            if deliveries.is_empty() {
                drop(first);
                if this.settings.poll_interval > std::time::Duration::ZERO {
                    sleep_or_shutdown(this.settings.poll_interval, &mut shutdown).await;
                }
                continue;
            }
            let mut permits = vec![first];
            for delivery in deliveries {
                let permit = match permits.pop() {
                    Some(p) => p,
                    None => slots.clone().try_acquire_owned().unwrap_or_else(|_| {
                        // More jobs than slots (SQS may round up): run it anyway.
                        Arc::new(Semaphore::new(1))
                            .try_acquire_owned()
                            .expect("fresh semaphore")
                    }),
                };
                if let Some(enqueued) = delivery.enqueued_at
                    && let Ok(lag) = SystemTime::now().duration_since(enqueued)
                {
                    metrics::queue_lag(lag);
                }
                in_flight
                    .lock()
                    .expect("not poisoned")
                    .insert(delivery.prediction_id, delivery.clone());
                let this = this.clone();
                let in_flight = in_flight.clone();
                let span = tracing::info_span!("job", prediction = %delivery.prediction_id, attempt = delivery.attempt);
                tasks.spawn(
                    async move {
                        let id = delivery.prediction_id;
                        this.supervise(delivery).await;
                        in_flight.lock().expect("not poisoned").remove(&id);
                        drop(permit);
                    }
                    .instrument(span),
                );
            }
        }
        sampler.abort();
        tracing::info!(
            running = tasks.len(),
            "worker stopping: finishing running jobs"
        );
        let grace = this.settings.shutdown_grace;
        if tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} })
            .await
            .is_err()
        {
            tasks.abort_all();
            let left: Vec<Delivery> = in_flight
                .lock()
                .expect("not poisoned")
                .drain()
                .map(|(_, d)| d)
                .collect();
            for delivery in left {
                tracing::warn!(prediction = %delivery.prediction_id, "releasing an unfinished job");
                if let Err(e) = this.queue.release(&delivery).await {
                    tracing::error!(error = %e, "releasing a job failed; it returns when its lease expires");
                }
            }
        }
        tracing::info!("worker stopped");
    }

    /// Runs one job in its own task, renewing its lease meanwhile, and
    /// settles it with the queue whatever happens, panics included.
    async fn supervise(self: Arc<Self>, delivery: Delivery) {
        let started = Instant::now();
        let id = delivery.prediction_id;
        // Both tasks die with this one (a worker aborted at shutdown must
        // stop renewing, or its jobs would never come back).
        let renewer = AbortOnDrop({
            let queue = self.queue.clone();
            let delivery = delivery.clone();
            let every = self.settings.lease / 3;
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    if let Err(e) = queue.extend(&delivery).await {
                        tracing::warn!(error = %e, "extending a job's lease failed");
                    }
                }
            })
        });
        let mut job = AbortOnDrop(tokio::spawn({
            let this = self.clone();
            let delivery = delivery.clone();
            async move { this.run_job(&delivery).await }.in_current_span()
        }));
        let outcome = match (&mut job.0).await {
            Ok(outcome) => outcome,
            Err(e) if e.is_panic() => {
                let message = panic_message(e.into_panic());
                tracing::error!(prediction = %id, panic = %message, "a job panicked");
                JobOutcome::Failed(JobError::Panic(message))
            }
            Err(_) => return, // aborted at shutdown: released by the caller
        };
        drop(renewer);
        self.settle(&delivery, outcome, started).await;
    }
}

/// Aborts the task when dropped.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// How often the worker samples the queue for its gauges: half the
/// CloudWatch agent's 30 s scrape interval, so every scrape sees a figure
/// at most one sample old, for one cheap query per worker.
const BACKLOG_SAMPLE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(15);

/// Keeps the queue gauges current (the worker sees queue lag only when it
/// takes a job, which is exactly when nobody is taking them).
async fn sample_backlog(queue: Arc<dyn Queue>) {
    let mut every = tokio::time::interval(BACKLOG_SAMPLE_INTERVAL);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        match queue.backlog().await {
            Ok(backlog) => metrics::queue_backlog(&backlog),
            Err(e) => tracing::warn!(error = %e, "sampling the queue backlog failed"),
        }
    }
}

async fn sleep_or_shutdown(d: std::time::Duration, shutdown: &mut watch::Receiver<bool>) {
    tokio::select! {
        _ = tokio::time::sleep(d) => {}
        _ = shutdown.changed() => {}
    }
}
