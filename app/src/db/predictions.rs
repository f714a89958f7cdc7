//! Predictions: what the API shows and what the worker records.
//!
//! Reads for the API are always scoped by user: another user's prediction is
//! simply not found. Writes for the worker set values, never add to them, so
//! a redelivered job cannot double-count.

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Db, now_ms, rfc3339};
use crate::domain::{PredictionId, Status, UserId};

/// A prediction as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Prediction {
    pub id: String,
    pub upload_id: String,
    pub status: Status,
    pub rows: Option<i64>,
    pub high_risk: Option<i64>,
    pub error: Option<String>,
    pub created_at: String,
    pub completed_at: Option<String>,
    /// What was made of the uploaded file (`null` for predictions recorded
    /// before the report existed).
    pub ingest_report: Option<serde_json::Value>,
    #[serde(skip)]
    pub output_key: Option<String>,
    #[serde(skip)]
    pub object_key: String,
    #[serde(skip)]
    pub attempts: i64,
}

/// What a finished job records.
#[derive(Debug, Clone)]
pub struct Completion<'a> {
    pub output_key: &'a str,
    pub rows: u64,
    pub high_risk: u64,
    /// The summary as JSON text (`retainwise_churn::summary::Summary`).
    pub summary: &'a str,
}

const SELECT_FOR_USER: &str = "SELECT p.id, p.upload_id, p.status, p.rows, p.high_risk, p.error, \
     p.created_at, p.completed_at, p.output_key, p.attempts, p.ingest_report, u.object_key \
     FROM predictions p JOIN uploads u ON u.id = p.upload_id WHERE p.id = $1 AND p.user_id = $2";

const SELECT_ANY: &str = "SELECT p.id, p.upload_id, p.status, p.rows, p.high_risk, p.error, \
     p.created_at, p.completed_at, p.output_key, p.attempts, p.ingest_report, u.object_key \
     FROM predictions p JOIN uploads u ON u.id = p.upload_id WHERE p.id = $1";

fn from_row(r: &AnyRow) -> Result<Prediction, sqlx::Error> {
    let status: String = r.try_get("status")?;
    let completed_at: Option<i64> = r.try_get("completed_at")?;
    Ok(Prediction {
        id: r.try_get("id")?,
        upload_id: r.try_get("upload_id")?,
        status: Status::parse(&status).ok_or_else(|| {
            sqlx::Error::Decode(format!("unknown prediction status {status:?}").into())
        })?,
        rows: r.try_get("rows")?,
        high_risk: r.try_get("high_risk")?,
        error: r.try_get("error")?,
        created_at: rfc3339(r.try_get("created_at")?),
        completed_at: completed_at.map(rfc3339),
        ingest_report: r
            .try_get::<Option<String>, _>("ingest_report")?
            .map(|text| serde_json::from_str(&text))
            .transpose()
            .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        output_key: r.try_get("output_key")?,
        object_key: r.try_get("object_key")?,
        attempts: r.try_get::<i32, _>("attempts").map(i64::from)?,
    })
}

impl Db {
    /// The caller's prediction; `None` for a missing one *or another user's*.
    pub async fn user_prediction(
        &self,
        user: &UserId,
        id: PredictionId,
    ) -> Result<Option<Prediction>, sqlx::Error> {
        sqlx::query(SELECT_FOR_USER)
            .bind(id.to_string())
            .bind(user.as_str())
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(from_row)
            .transpose()
    }

    /// Any prediction, for the worker.
    pub async fn prediction(&self, id: PredictionId) -> Result<Option<Prediction>, sqlx::Error> {
        sqlx::query(SELECT_ANY)
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(from_row)
            .transpose()
    }

    /// The worker took the job: `running`, with the attempt number.
    pub async fn mark_running(&self, id: PredictionId, attempt: u32) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE predictions SET status = 'running', attempts = $2, started_at = $3, error = NULL \
             WHERE id = $1 AND status IN ('queued', 'running')",
        )
        .bind(id.to_string())
        .bind(attempt as i32)
        .bind(now_ms())
        .execute(&self.pool)
        .await
        .map(|_| ())
    }

    /// Back to `queued` after a transient failure, with the reason.
    pub async fn mark_retrying(&self, id: PredictionId, error: &str) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE predictions SET status = 'queued', error = $2 WHERE id = $1 AND status = 'running'",
        )
        .bind(id.to_string())
        .bind(error)
        .execute(&self.pool)
        .await
        .map(|_| ())
    }

    /// The job is done: output, counts and `completed`, all set at once.
    pub async fn mark_completed(
        &self,
        id: PredictionId,
        c: &Completion<'_>,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE predictions SET status = 'completed', output_key = $2, rows = $3, high_risk = $4, \
             summary = $5, error = NULL, completed_at = $6 WHERE id = $1 AND status <> 'failed'",
        )
        .bind(id.to_string())
        .bind(c.output_key)
        .bind(c.rows as i64)
        .bind(c.high_risk as i64)
        .bind(c.summary)
        .bind(now_ms())
        .execute(&self.pool)
        .await
        .map(|_| ())
    }

    /// The stored summary (JSON text) of a prediction; `None` when there is
    /// none (not completed, or completed before summaries existed). Read on
    /// its own so that listing and showing predictions never carry it.
    pub async fn summary(&self, id: PredictionId) -> Result<Option<String>, sqlx::Error> {
        sqlx::query("SELECT summary FROM predictions WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .map_or(Ok(None), |r| r.try_get("summary"))
    }

    /// Stores the summary of a prediction completed before summaries
    /// existed; one already stored is kept (two first requests racing
    /// compute the same text).
    pub async fn set_summary(&self, id: PredictionId, summary: &str) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE predictions SET summary = $2 \
             WHERE id = $1 AND status = 'completed' AND summary IS NULL",
        )
        .bind(id.to_string())
        .bind(summary)
        .execute(&self.pool)
        .await
        .map(|_| ())
    }

    /// Forgets a stored summary, as if the prediction had completed before
    /// summaries existed (tests of the compute-on-first-request path).
    pub async fn clear_summary(&self, id: PredictionId) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE predictions SET summary = NULL WHERE id = $1")
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .map(|_| ())
    }

    /// The job will not be tried again.
    pub async fn mark_failed(&self, id: PredictionId, error: &str) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE predictions SET status = 'failed', error = $2, completed_at = $3 \
             WHERE id = $1 AND status <> 'completed'",
        )
        .bind(id.to_string())
        .bind(error)
        .bind(now_ms())
        .execute(&self.pool)
        .await
        .map(|_| ())
    }
}
