//! The HTTP API (`DESIGN.md` §3). Handlers see the caller only as a
//! [`UserId`](crate::domain::UserId), through the [`user_id`] extractor.
//!
//! | method, path | handler |
//! |---|---|
//! | `GET /api/health` | [`health::health`] |
//! | `POST /api/uploads` | [`uploads::create`] |
//! | `GET /api/uploads` | [`uploads::list`] |
//! | `GET /api/predictions/{id}` | [`predictions::show`] |
//! | `GET /api/predictions/{id}/download` | [`predictions::download`] |
//! | `GET /api/predictions/{id}/summary` | [`predictions::summary`] |
//!
//! The web app's pages and assets are in [`crate::web`].

pub mod errors;
pub mod health;
pub mod predictions;
pub mod uploads;
pub mod user_id;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

use crate::db::Db;
use crate::queue::Queue;
use crate::scoring::FileScorer;
use crate::storage::Storage;

#[derive(Debug, Clone)]
pub struct AppState {
    pub db: Db,
    pub storage: Storage,
    pub queue: Arc<dyn Queue>,
    pub scorer: Arc<dyn FileScorer>,
    pub max_upload_bytes: u64,
    /// The web app's shell, rendered once from the settings.
    pub pages: Arc<crate::web::Pages>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/health", get(health::health))
        .route("/api/uploads", post(uploads::create).get(uploads::list))
        .route("/api/predictions/{id}", get(predictions::show))
        .route("/api/predictions/{id}/download", get(predictions::download))
        .merge(crate::web::router(state.pages.clone()))
        .route("/api/predictions/{id}/summary", get(predictions::summary))
        .fallback(errors::not_found)
        // Uploads are streamed and limited by `APP_MAX_UPLOAD_BYTES` in the
        // handler; axum's 2 MB buffer limit does not apply to a stream.
        .layer(DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn(crate::telemetry::record))
        .with_state(state)
}
