//! JSON errors: `{"error": "<code>", "message": "<what to do>"}`. Each
//! handler has its own error enum; this is the shared shape and the rule
//! that 5xx causes are logged in full and shown to the client briefly.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

pub fn json_error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let body = serde_json::json!({ "error": code, "message": message.into() });
    (status, Json(body)).into_response()
}

/// A server-side failure: the log gets the cause chain, the client a line.
pub fn internal(code: &str, error: &(dyn std::error::Error + 'static)) -> Response {
    let mut chain = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        chain.push_str(": ");
        chain.push_str(&s.to_string());
        source = s.source();
    }
    tracing::error!(error = %chain, code, "request failed");
    json_error(
        StatusCode::SERVICE_UNAVAILABLE,
        code,
        "a backing service is unavailable; try again shortly",
    )
}

pub async fn not_found() -> Response {
    json_error(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}
