//! `GET /api/health`: 200 when the database and storage answer.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::AppState;

pub async fn health(State(state): State<AppState>) -> Response {
    let (db, storage) = tokio::join!(state.db.ping(), state.storage.ping());
    let db_ok = db
        .as_ref()
        .map_err(|e| tracing::warn!(error = %e, "health: database"))
        .is_ok();
    let storage_ok = storage
        .as_ref()
        .map_err(|e| tracing::warn!(error = %e, "health: storage"))
        .is_ok();
    let status = if db_ok && storage_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let word = |ok: bool| if ok { "ok" } else { "unavailable" };
    let body = serde_json::json!({
        "status": word(db_ok && storage_ok),
        "database": word(db_ok),
        "storage": word(storage_ok),
    });
    (status, Json(body)).into_response()
}
