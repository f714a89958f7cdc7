//! `GET /api/predictions/{id}` and `GET /api/predictions/{id}/download`.
//! Another user's prediction is 404, exactly like a missing one: the
//! lookup is scoped by user, so the handler cannot tell them apart either.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::errors::{internal, json_error};
use crate::db::predictions::Prediction;
use crate::domain::{PredictionId, Status, UserId};

#[derive(Debug, thiserror::Error)]
pub enum PredictionError {
    #[error("no such prediction")]
    NotFound,
    #[error("the prediction is {0}; the scored CSV exists once it is completed")]
    NotReady(&'static str),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
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
