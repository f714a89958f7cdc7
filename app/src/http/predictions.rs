//! `GET /api/predictions/{id}`, `GET /api/predictions/{id}/download` and
//! `GET /api/predictions/{id}/summary`. Another user's prediction is 404,
//! exactly like a missing one: the lookup is scoped by user, so the handler
//! cannot tell them apart either.

use std::io;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::AppState;
use super::errors::{internal, json_error};
use crate::db::predictions::Prediction;
use crate::domain::{PredictionId, Status, UserId};
use crate::io_bridge::{CHANNEL_CHUNKS, ChannelReader};
use crate::scoring::ScoringError;

#[derive(Debug, thiserror::Error)]
pub enum PredictionError {
    #[error("no such prediction")]
    NotFound,
    #[error("the prediction is {0}; its results exist once it is completed")]
    NotReady(&'static str),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
    #[error("summarising the scored CSV: {0}")]
    Summarise(#[from] ScoringError),
}

impl IntoResponse for PredictionError {
    fn into_response(self) -> Response {
        match &self {
            PredictionError::NotFound => {
                json_error(StatusCode::NOT_FOUND, "not_found", self.to_string())
            }
            PredictionError::NotReady(_) => {
                json_error(StatusCode::CONFLICT, "not_ready", self.to_string())
            }
            PredictionError::Db(e) => internal("unavailable", e),
            PredictionError::Storage(e) => internal("unavailable", e),
            PredictionError::Summarise(e) => internal("unavailable", e),
        }
    }
}

async fn find(
    state: &AppState,
    user: &UserId,
    raw_id: &str,
) -> Result<Prediction, PredictionError> {
    let id = PredictionId::parse(raw_id).ok_or(PredictionError::NotFound)?;
    state
        .db
        .user_prediction(user, id)
        .await?
        .ok_or(PredictionError::NotFound)
}

pub async fn show(
    State(state): State<AppState>,
    user: UserId,
    Path(id): Path<String>,
) -> Result<Json<Prediction>, PredictionError> {
    Ok(Json(find(&state, &user, &id).await?))
}

pub async fn download(
    State(state): State<AppState>,
    user: UserId,
    Path(id): Path<String>,
) -> Result<Response, PredictionError> {
    let prediction = find(&state, &user, &id).await?;
    let (Status::Completed, Some(key)) = (prediction.status, prediction.output_key.as_deref())
    else {
        return Err(PredictionError::NotReady(prediction.status.as_str()));
    };
    let stream = state.storage.read(key).await?;
    let disposition = format!("attachment; filename=\"predictions-{}.csv\"", prediction.id);
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

/// The prediction's summary (`retainwise_churn::summary::Summary` as JSON):
/// what its page shows, read from the database, so a million-customer
/// prediction answers as fast as a small one. The worker stores it with the
/// result; a prediction completed before summaries existed gets its summary
/// computed from the result object on first request, stored, and served
/// from the database after that.
pub async fn summary(
    State(state): State<AppState>,
    user: UserId,
    Path(id): Path<String>,
) -> Result<Response, PredictionError> {
    let prediction = find(&state, &user, &id).await?;
    let (Status::Completed, Some(key)) = (prediction.status, prediction.output_key.as_deref())
    else {
        return Err(PredictionError::NotReady(prediction.status.as_str()));
    };
    let id = PredictionId::parse(&prediction.id).ok_or(PredictionError::NotFound)?;
    let json = match state.db.summary(id).await? {
        Some(json) => json,
        None => {
            let json = summarise_result(&state, key).await?;
            state.db.set_summary(id, &json).await?;
            tracing::info!(prediction = %id, "summary computed from the stored result");
            json
        }
    };
    Ok((
        [
            (header::CONTENT_TYPE, "application/json"),
            // Per user and per prediction, and an old prediction's summary
            // appears on first request: never kept by a cache on the way.
            (header::CACHE_CONTROL, "no-store"),
        ],
        json,
    )
        .into_response())
}

/// Reads the scored CSV at `key` once, streaming, and summarises it as the
/// worker would have; returns the JSON text to store.
async fn summarise_result(state: &AppState, key: &str) -> Result<String, PredictionError> {
    let mut stream = state.storage.read(key).await?;
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(CHANNEL_CHUNKS);
    let scorer = state.scorer.clone();
    let summarising =
        tokio::task::spawn_blocking(move || scorer.summarise(&mut ChannelReader::new(rx)));
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(io::Error::other);
        let failed = chunk.is_err();
        // A closed channel means the summariser stopped early (bad data):
        // its own error is the one to report.
        if tx.send(chunk).await.is_err() || failed {
            break;
        }
    }
    drop(tx);
    let summary = match summarising.await {
        Ok(summary) => summary?,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => return Err(ScoringError::Io(io::Error::other(e)).into()),
    };
    Ok(serde_json::to_string(&summary).expect("a summary always serialises"))
}
