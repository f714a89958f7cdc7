//! `POST /api/uploads` (a `text/csv` body, or a `multipart/form-data` field
//! `file`) and `GET /api/uploads`.

use axum::Json;
use axum::extract::{FromRequest, Multipart, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::AppState;
use super::errors::{internal, json_error};
use crate::domain::{Status, UserId};
use crate::ingest::{self, IngestError};
use crate::metrics;

#[derive(Debug, Deserialize)]
pub struct UploadQuery {
    /// Name shown in listings for a raw `text/csv` body.
    pub filename: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error(
        "send the file as text/csv (or another type a browser uses for a CSV or workbook) or as multipart/form-data field `file`, not {0}"
    )]
    UnsupportedType(String),
    #[error("the multipart body has no field named `file`")]
    NoFileField,
    #[error("malformed multipart body: {0}")]
    Multipart(String),
}

impl IntoResponse for CreateError {
    fn into_response(self) -> Response {
        let (status, code, outcome) = match &self {
            CreateError::Ingest(IngestError::TooLarge { .. }) => {
                (StatusCode::PAYLOAD_TOO_LARGE, "too_large", "too_large")
            }
            CreateError::Ingest(IngestError::BadCsv(_)) => {
                (StatusCode::BAD_REQUEST, "bad_csv", "rejected")
            }
            CreateError::Ingest(IngestError::Body(_))
            | CreateError::Multipart(_)
            | CreateError::NoFileField => (StatusCode::BAD_REQUEST, "bad_request", "rejected"),
            CreateError::UnsupportedType(_) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "rejected",
            ),
            CreateError::Ingest(e) => {
                metrics::upload("error", 0);
                return internal("unavailable", e);
            }
        };
        metrics::upload(outcome, 0);
        json_error(status, code, self.to_string())
    }
}

/// Longest filename kept; longer ones are cut.
const MAX_FILENAME: usize = 255;

fn clean_filename(raw: Option<&str>) -> String {
    let name: String = raw
        .unwrap_or("upload.csv")
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_FILENAME)
        .collect();
    if name.trim().is_empty() {
        "upload.csv".into()
    } else {
        name
    }
}

pub async fn create(
    State(state): State<AppState>,
    user: UserId,
    Query(query): Query<UploadQuery>,
    request: Request,
) -> Result<Response, CreateError> {
    if let Some(length) = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        // Refuse before reading anything; multipart framing adds a little,
        // so this is a bound, and the streamed count is the exact check.
        if length > state.max_upload_bytes + 64 * 1024 {
            return Err(IngestError::TooLarge {
                limit: state.max_upload_bytes,
            }
            .into());
        }
    }
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("text/csv")
        .to_ascii_lowercase();
    let accepted = if content_type.starts_with("multipart/form-data") {
        let mut multipart = Multipart::from_request(request, &state)
            .await
            .map_err(|e| CreateError::Multipart(e.body_text()))?;
        loop {
            let field = multipart
                .next_field()
                .await
                .map_err(|e| CreateError::Multipart(e.body_text()))?
                .ok_or(CreateError::NoFileField)?;
            if field.name() == Some("file") {
                let filename = clean_filename(field.file_name().or(query.filename.as_deref()));
                break ingest::ingest(&state, &user, &filename, field).await?;
            }
        }
    } else if [
        "text/csv",
        "text/plain",
        "text/x-csv",
        "text/tab-separated-values",
        "application/csv",
        "application/octet-stream",
        "application/vnd.ms-excel",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/gzip",
        "application/x-gzip",
    ]
    .iter()
    .any(|t| content_type.starts_with(t))
    {
        let filename = clean_filename(query.filename.as_deref());
        let body = request.into_body().into_data_stream();
        ingest::ingest(&state, &user, &filename, body).await?
    } else {
        return Err(CreateError::UnsupportedType(content_type));
    };
    tracing::info!(upload = %accepted.upload_id, prediction = %accepted.prediction_id, rows = accepted.rows, bytes = accepted.bytes, "upload accepted");
    let body = serde_json::json!({
        "upload_id": accepted.upload_id,
        "prediction_id": accepted.prediction_id,
        "status": Status::Queued,
        "rows": accepted.rows,
        "ingest_report": accepted.report,
    });
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

impl IntoResponse for ListError {
    fn into_response(self) -> Response {
        internal("unavailable", &self)
    }
}

pub async fn list(State(state): State<AppState>, user: UserId) -> Result<Response, ListError> {
    let uploads = state.db.list_uploads(&user).await?;
    Ok(Json(uploads).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filenames_lose_paths_and_control_characters() {
        assert_eq!(clean_filename(Some("../../etc/passwd")), "passwd");
        assert_eq!(clean_filename(Some("C:\\data\\q3.csv")), "q3.csv");
        assert_eq!(clean_filename(Some("a\nb.csv")), "ab.csv");
        assert_eq!(clean_filename(None), "upload.csv");
        assert_eq!(clean_filename(Some("dir/")), "upload.csv");
        assert_eq!(clean_filename(Some(&"x".repeat(300))).len(), MAX_FILENAME);
    }
}
