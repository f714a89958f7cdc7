//! Uploads and their first prediction, recorded together.

use serde::Serialize;
use sqlx::Row;

use super::{Db, now_ms, rfc3339};
use crate::domain::{PredictionId, Status, UploadId, UserId};

/// What a stored upload is, for the caller's listing.
#[derive(Debug, Clone, Serialize)]
pub struct UploadSummary {
    pub id: String,
    pub filename: String,
    pub size_bytes: i64,
    pub rows: i64,
    pub created_at: String,
    pub prediction_id: Option<String>,
    pub status: Option<Status>,
    /// High-risk customers of the prediction once it is completed; `null`
    /// before (and for a failed one).
    pub high_risk: Option<i64>,
}

/// A new upload whose object is already in storage.
#[derive(Debug, Clone)]
pub struct NewUpload<'a> {
    pub id: UploadId,
    pub prediction_id: PredictionId,
    pub user: &'a UserId,
    pub filename: &'a str,
    pub object_key: &'a str,
    pub size_bytes: u64,
    pub rows: u64,
    /// The ingest report, as JSON text.
    pub ingest_report: Option<String>,
}

impl Db {
    /// Records the upload and its queued prediction in one transaction.
    pub async fn insert_upload(&self, u: &NewUpload<'_>) -> Result<(), sqlx::Error> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO uploads (id, user_id, filename, object_key, size_bytes, rows, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(u.id.to_string())
        .bind(u.user.as_str())
        .bind(u.filename)
        .bind(u.object_key)
        .bind(u.size_bytes as i64)
        .bind(u.rows as i64)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO predictions (id, upload_id, user_id, status, attempts, created_at, ingest_report) \
             VALUES ($1, $2, $3, 'queued', 0, $4, $5)",
        )
        .bind(u.prediction_id.to_string())
        .bind(u.id.to_string())
        .bind(u.user.as_str())
        .bind(now)
        .bind(u.ingest_report.as_deref())
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }

    /// Undoes [`Db::insert_upload`] when the job could not be queued.
    pub async fn delete_upload(&self, id: UploadId) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM predictions WHERE upload_id = $1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM uploads WHERE id = $1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }

    /// The caller's uploads, newest first, each with its latest prediction.
    pub async fn list_uploads(&self, user: &UserId) -> Result<Vec<UploadSummary>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT u.id, u.filename, u.size_bytes, u.rows, u.created_at, p.id AS prediction_id, p.status, \
             CASE WHEN p.status = 'completed' THEN p.high_risk END AS high_risk \
             FROM uploads u LEFT JOIN predictions p ON p.upload_id = u.id \
             WHERE u.user_id = $1 ORDER BY u.created_at DESC, u.id DESC",
        )
        .bind(user.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let status: Option<String> = r.try_get("status")?;
                Ok(UploadSummary {
                    id: r.try_get("id")?,
                    filename: r.try_get("filename")?,
                    size_bytes: r.try_get("size_bytes")?,
                    rows: r.try_get("rows")?,
                    created_at: rfc3339(r.try_get("created_at")?),
                    prediction_id: r.try_get("prediction_id")?,
                    status: status.as_deref().and_then(Status::parse),
                    high_risk: r.try_get("high_risk")?,
                })
            })
            .collect()
    }

    /// How many uploads exist in total (tests: nothing half-written stays).
    pub async fn count_uploads(&self) -> Result<i64, sqlx::Error> {
        sqlx::query("SELECT COUNT(*) AS n FROM uploads")
            .fetch_one(&self.pool)
            .await?
            .try_get("n")
    }
}
