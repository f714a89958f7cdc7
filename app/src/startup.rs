//! Wiring: settings → backing services → HTTP server and/or worker.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use retainwise_linger::{Linger, LingeringStream};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::db::Db;
use crate::http::{AppState, router};
use crate::queue::Queue;
use crate::queue::db::DbQueue;
use crate::queue::sqs::{self, SqsQueue};
use crate::scoring::FileScorer;
use crate::settings::{QueueSetting, Settings};
use crate::storage::Storage;
use crate::worker::Worker;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("database migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("storage: {0}")]
    Storage(#[from] crate::storage::StorageError),
    #[error("queue: {0}")]
    Queue(#[from] crate::queue::QueueError),
    #[error("listening on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// The database, object storage and queue, connected and migrated.
#[derive(Debug, Clone)]
pub struct Services {
    pub db: Db,
    pub storage: Storage,
    pub queue: Arc<dyn Queue>,
}

/// Attempts at migrating on start: the database may still be starting.
const MIGRATE_ATTEMPTS: u32 = 10;

impl Services {
    pub async fn connect(settings: &Settings) -> Result<Self, StartupError> {
        let db = Db::connect(&settings.database_url).await?;
        let mut attempt = 1;
        loop {
            match db.migrate().await {
                Ok(()) => break,
                Err(e)
                    if attempt < MIGRATE_ATTEMPTS
                        && matches!(e, sqlx::migrate::MigrateError::Execute(_)) =>
                {
                    tracing::warn!(error = %e, attempt, "database not ready; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    attempt += 1;
                }
                Err(e) => return Err(e.into()),
            }
        }
        let endpoint = settings.aws_endpoint_url.as_deref();
        let storage = Storage::from_url(&settings.storage_url, endpoint)?;
        let queue: Arc<dyn Queue> = match &settings.queue {
            QueueSetting::Db => Arc::new(DbQueue::new(db.clone(), settings.worker.lease)),
            QueueSetting::Sqs(url) => Arc::new(
                SqsQueue::new(
                    sqs::client(endpoint).await,
                    url.clone(),
                    settings.worker.lease,
                    settings.worker.sqs_wait,
                )
                .await?,
            ),
        };
        Ok(Services { db, storage, queue })
    }

    pub fn worker(&self, settings: &Settings, scorer: Arc<dyn FileScorer>) -> Worker {
        Worker {
            db: self.db.clone(),
            storage: self.storage.clone(),
            queue: self.queue.clone(),
            scorer,
            settings: settings.worker.clone(),
        }
    }
}

/// A bound HTTP server, not yet serving.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    state: AppState,
}

impl Server {
    pub async fn bind(
        settings: &Settings,
        services: &Services,
        scorer: Arc<dyn FileScorer>,
    ) -> Result<Self, StartupError> {
        let listener =
            TcpListener::bind(settings.listen)
                .await
                .map_err(|source| StartupError::Listen {
                    addr: settings.listen,
                    source,
                })?;
        Ok(Server {
            listener,
            state: AppState {
                db: services.db.clone(),
                storage: services.storage.clone(),
                queue: services.queue.clone(),
                scorer,
                max_upload_bytes: settings.max_upload_bytes,
                pages: Arc::new(crate::web::Pages::new(&settings.sign_in)),
            },
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves until `shutdown` turns true, then finishes in-flight requests.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) -> std::io::Result<()> {
        tracing::info!(addr = %self.local_addr(), "listening");
        axum::serve(LingeringListener(self.listener), router(self.state))
            .with_graceful_shutdown(async move {
                while !*shutdown.borrow() {
                    if shutdown.changed().await.is_err() {
                        break;
                    }
                }
            })
            .await
    }
}

/// How the app closes a connection it answered early (a 413 on
/// `Content-Length` while the proxy is still sending the body): half-close,
/// then read and discard. The only peer is the proxy on loopback, so the
/// bounds are generous: a reset there would reach the user as a 502 instead
/// of the 413 (measured before this: 20 of 50 such uploads).
const LINGER: Linger = Linger {
    max_bytes: 64 * 1024 * 1024,
    max_time: std::time::Duration::from_secs(2),
};

/// The TCP listener, handing out streams that close with a lingering close
/// (see `retainwise-linger`).
struct LingeringListener(TcpListener);

impl axum::serve::Listener for LingeringListener {
    type Io = LingeringStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (stream, addr) = axum::serve::Listener::accept(&mut self.0).await;
        (LingeringStream::new(stream, LINGER), addr)
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

/// A flag that turns true on SIGTERM or Ctrl-C.
pub fn shutdown_signal() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => {}
            _ = term => {}
        }
        tracing::info!("shutdown requested");
        let _ = tx.send(true);
    });
    rx
}
