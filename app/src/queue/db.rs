//! The table queue: jobs in the app's own database.
//!
//! Taking a job is one `UPDATE … RETURNING` over the oldest visible rows; on
//! PostgreSQL the inner `SELECT … FOR UPDATE SKIP LOCKED` lets concurrent
//! workers take different jobs without waiting on each other. SQLite has a
//! single writer, so the same statement without the lock clause is already
//! exclusive.

use std::time::{Duration, UNIX_EPOCH};

use async_trait::async_trait;
use sqlx::Row;
use uuid::Uuid;

use super::{Backlog, Delivery, Queue, QueueError};
use crate::db::{Db, Engine, now_ms};
use crate::domain::PredictionId;

#[derive(Debug, Clone)]
pub struct DbQueue {
    db: Db,
    lease: Duration,
}

const TAKE_POSTGRES: &str = "UPDATE jobs SET attempts = attempts + 1, visible_at = $1, lease_token = $2 \
     WHERE id IN (SELECT id FROM jobs WHERE dead_at IS NULL AND visible_at <= $3 \
     ORDER BY visible_at LIMIT $4 FOR UPDATE SKIP LOCKED) \
     RETURNING id, prediction_id, attempts, enqueued_at";

const TAKE_SQLITE: &str = "UPDATE jobs SET attempts = attempts + 1, visible_at = $1, lease_token = $2 \
     WHERE id IN (SELECT id FROM jobs WHERE dead_at IS NULL AND visible_at <= $3 \
     ORDER BY visible_at LIMIT $4) \
     RETURNING id, prediction_id, attempts, enqueued_at";

impl DbQueue {
    pub fn new(db: Db, lease: Duration) -> Self {
        DbQueue { db, lease }
    }

    fn lease_ms(&self) -> i64 {
        self.lease.as_millis() as i64
    }

    /// Jobs that used every attempt (for operators and tests).
    pub async fn dead_jobs(&self) -> Result<Vec<PredictionId>, QueueError> {
        let rows = sqlx::query("SELECT prediction_id FROM jobs WHERE dead_at IS NOT NULL")
            .fetch_all(&self.db.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let id: String = r.try_get("prediction_id")?;
                PredictionId::parse(&id).ok_or(QueueError::Malformed(id))
            })
            .collect()
    }

    /// Jobs still waiting or running.
    pub async fn pending(&self) -> Result<i64, QueueError> {
        Ok(
            sqlx::query("SELECT COUNT(*) AS n FROM jobs WHERE dead_at IS NULL")
                .fetch_one(&self.db.pool)
                .await?
                .try_get("n")?,
        )
    }
}

/// `job_id:lease_token`
fn split_receipt(receipt: &str) -> Result<(&str, &str), QueueError> {
    receipt
        .split_once(':')
        .ok_or_else(|| QueueError::Malformed(receipt.to_owned()))
}

#[async_trait]
impl Queue for DbQueue {
    async fn enqueue(&self, prediction: PredictionId) -> Result<(), QueueError> {
        let now = now_ms();
        sqlx::query(
            "INSERT INTO jobs (id, prediction_id, attempts, visible_at, enqueued_at) VALUES ($1, $2, 0, $3, $3)",
        )
        .bind(Uuid::new_v4().to_string())
        .bind(prediction.to_string())
        .bind(now)
        .execute(&self.db.pool)
        .await?;
        Ok(())
    }

    async fn receive(&self, max: usize) -> Result<Vec<Delivery>, QueueError> {
        let now = now_ms();
        let token = Uuid::new_v4().to_string();
        let sql = match self.db.engine {
            Engine::Postgres => TAKE_POSTGRES,
            Engine::Sqlite => TAKE_SQLITE,
        };
        let rows = sqlx::query(sql)
            .bind(now + self.lease_ms())
            .bind(&token)
            .bind(now)
            .bind(max as i64)
            .fetch_all(&self.db.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let id: String = r.try_get("id")?;
                let prediction: String = r.try_get("prediction_id")?;
                let attempts: i32 = r.try_get("attempts")?;
                let enqueued_at: i64 = r.try_get("enqueued_at")?;
                Ok(Delivery {
                    prediction_id: PredictionId::parse(&prediction)
                        .ok_or_else(|| QueueError::Malformed(prediction.clone()))?,
                    attempt: attempts.max(1) as u32,
                    receipt: format!("{id}:{token}"),
                    enqueued_at: Some(
                        UNIX_EPOCH + Duration::from_millis(enqueued_at.max(0) as u64),
                    ),
                })
            })
            .collect()
    }

    async fn extend(&self, delivery: &Delivery) -> Result<(), QueueError> {
        let (id, token) = split_receipt(&delivery.receipt)?;
        sqlx::query("UPDATE jobs SET visible_at = $1 WHERE id = $2 AND lease_token = $3")
            .bind(now_ms() + self.lease_ms())
            .bind(id)
            .bind(token)
            .execute(&self.db.pool)
            .await?;
        Ok(())
    }

    async fn ack(&self, delivery: &Delivery) -> Result<(), QueueError> {
        let (id, token) = split_receipt(&delivery.receipt)?;
        sqlx::query("DELETE FROM jobs WHERE id = $1 AND lease_token = $2")
            .bind(id)
            .bind(token)
            .execute(&self.db.pool)
            .await?;
        Ok(())
    }

    async fn retry_later(&self, delivery: &Delivery, delay: Duration) -> Result<(), QueueError> {
        let (id, token) = split_receipt(&delivery.receipt)?;
        sqlx::query("UPDATE jobs SET visible_at = $1, lease_token = NULL WHERE id = $2 AND lease_token = $3")
            .bind(now_ms() + delay.as_millis() as i64)
            .bind(id)
            .bind(token)
            .execute(&self.db.pool)
            .await?;
        Ok(())
    }

    async fn dead_letter(&self, delivery: &Delivery) -> Result<(), QueueError> {
        let (id, token) = split_receipt(&delivery.receipt)?;
        sqlx::query(
            "UPDATE jobs SET dead_at = $1, lease_token = NULL WHERE id = $2 AND lease_token = $3",
        )
        .bind(now_ms())
        .bind(id)
        .bind(token)
        .execute(&self.db.pool)
        .await?;
        Ok(())
    }

    async fn backlog(&self) -> Result<Backlog, QueueError> {
        let now = now_ms();
        // One pass over the jobs table; it holds only jobs not yet done.
        let row = sqlx::query(
            "SELECT \
               COALESCE(SUM(CASE WHEN dead_at IS NULL AND visible_at <= $1 THEN 1 ELSE 0 END), 0) AS waiting, \
               MIN(CASE WHEN dead_at IS NULL AND visible_at <= $1 THEN enqueued_at END) AS oldest, \
               COALESCE(SUM(CASE WHEN dead_at IS NOT NULL THEN 1 ELSE 0 END), 0) AS dead \
             FROM jobs",
        )
        .bind(now)
        .fetch_one(&self.db.pool)
        .await?;
        let waiting: i64 = row.try_get("waiting")?;
        let oldest: Option<i64> = row.try_get("oldest")?;
        let dead: i64 = row.try_get("dead")?;
        Ok(Backlog {
            waiting: Some(waiting.max(0) as u64),
            oldest_age: Some(Duration::from_millis(
                oldest.map_or(0, |at| (now - at).max(0) as u64),
            )),
            dead: Some(dead.max(0) as u64),
        })
    }

    async fn release(&self, delivery: &Delivery) -> Result<(), QueueError> {
        // A shutdown is not the job's fault: give the attempt back.
        let (id, token) = split_receipt(&delivery.receipt)?;
        sqlx::query(
            "UPDATE jobs SET visible_at = $1, lease_token = NULL, attempts = attempts - 1 \
             WHERE id = $2 AND lease_token = $3",
        )
        .bind(now_ms())
        .bind(id)
        .bind(token)
        .execute(&self.db.pool)
        .await?;
        Ok(())
    }
}
