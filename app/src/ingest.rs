//! Taking in an upload: the body streams to storage and, at the same time,
//! through the model's parser on a blocking thread, so that the header and
//! every row are checked without the file ever being held in memory.
//!
//! ```text
//! body chunks ─┬─▶ ObjectWriter (multipart, parts in flight ≤ 2)
//!              └─▶ ChannelReader ─▶ FileScorer::validate (blocking thread)
//! ```
//!
//! Only when both succeed is the object completed and the upload recorded
//! and queued. Any failure (bad CSV, too large, client gone, storage down)
//! aborts the multipart upload and records nothing.

use std::io;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::sync::mpsc;

use retainwise_churn::report::IngestReport;

use crate::db::uploads::NewUpload;
use crate::domain::{PredictionId, UploadId, UserId};
use crate::http::AppState;
use crate::io_bridge::{CHANNEL_CHUNKS, ChannelReader};
use crate::metrics;
use crate::scoring::ScoringError;
use crate::storage::upload_key;

/// A stored, recorded and queued upload.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub upload_id: UploadId,
    pub prediction_id: PredictionId,
    pub rows: u64,
    pub bytes: u64,
    /// What was made of the file, when the model says.
    pub report: Option<IngestReport>,
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("the file is larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("{0}")]
    BadCsv(String),
    #[error("reading the request body: {0}")]
    Body(String),
    #[error("storage: {0}")]
    Storage(#[from] crate::storage::StorageError),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("queue: {0}")]
    Queue(#[from] crate::queue::QueueError),
}

/// Streams `body` in, checks it, stores it, records it, queues it.
pub async fn ingest<S, E>(
    state: &AppState,
    user: &UserId,
    filename: &str,
    body: S,
) -> Result<Accepted, IngestError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let upload_id = UploadId::new();
    let key = upload_key(upload_id);
    let mut writer = state.storage.writer(&key).await?;
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(CHANNEL_CHUNKS);
    let scorer = state.scorer.clone();
    let validation = tokio::task::spawn_blocking(move || scorer.check(&mut ChannelReader::new(rx)));

    let streamed = stream_into(state.max_upload_bytes, body, &tx, &mut writer).await;
    drop(tx);
    let validated = validation.await;
    let bytes = writer.bytes_written();
    let checked = match (streamed, validated) {
        (Err(e), _) => {
            writer.abort().await;
            return Err(e);
        }
        (Ok(()), Ok(Ok(checked))) if checked.rows > 0 => checked,
        (Ok(()), Ok(Ok(_))) => {
            writer.abort().await;
            return Err(IngestError::BadCsv(
                "the file has a header but no customer rows".into(),
            ));
        }
        (Ok(()), Ok(Err(ScoringError::Data(message)))) => {
            writer.abort().await;
            return Err(IngestError::BadCsv(message));
        }
        (Ok(()), Ok(Err(ScoringError::Io(e)))) => {
            writer.abort().await;
            return Err(IngestError::Body(e.to_string()));
        }
        (Ok(()), Err(join)) => {
            writer.abort().await;
            return Err(IngestError::Body(format!("checking the file: {join}")));
        }
    };
    writer.finish().await?;
    let rows = checked.rows;
    let report = checked.report;

    let prediction_id = PredictionId::new();
    let record = NewUpload {
        id: upload_id,
        prediction_id,
        user,
        filename,
        object_key: &key,
        size_bytes: bytes,
        rows,
        ingest_report: report
            .as_ref()
            .map(|r| serde_json::to_string(r).expect("a report serialises")),
    };
    if let Err(e) = state.db.insert_upload(&record).await {
        cleanup(state, upload_id, &key, false).await;
        return Err(e.into());
    }
    if let Err(e) = state.queue.enqueue(prediction_id).await {
        cleanup(state, upload_id, &key, true).await;
        return Err(e.into());
    }
    metrics::upload("accepted", bytes);
    Ok(Accepted {
        upload_id,
        prediction_id,
        rows,
        bytes,
        report,
    })
}

/// Copies the body to the writer and the validator, enforcing the limit.
/// Stops early when the validator has already rejected the file.
async fn stream_into<S, E>(
    limit: u64,
    mut body: S,
    validator: &mpsc::Sender<io::Result<Bytes>>,
    writer: &mut crate::storage::ObjectWriter,
) -> Result<(), IngestError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let mut total: u64 = 0;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| IngestError::Body(e.to_string()))?;
        total += chunk.len() as u64;
        if total > limit {
            return Err(IngestError::TooLarge { limit });
        }
        if validator.send(Ok(chunk.clone())).await.is_err() {
            // The validator stopped reading: it has found a problem, which
            // the caller reports. No point storing the rest.
            return Ok(());
        }
        writer.write(chunk).await?;
    }
    Ok(())
}

/// Removes what a failed upload left: its record (if written) and object.
async fn cleanup(state: &AppState, id: UploadId, key: &str, recorded: bool) {
    if recorded && let Err(e) = state.db.delete_upload(id).await {
        tracing::error!(error = %e, upload = %id, "removing a failed upload's record failed");
    }
    if let Err(e) = state.storage.delete(key).await {
        tracing::error!(error = %e, key, "removing a failed upload's object failed");
    }
}
