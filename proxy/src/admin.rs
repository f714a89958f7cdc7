//! The admin listener: `/metrics`, `/healthz`, `/readyz`.
//!
//! Apart from the data listener so scrapes and health checks never queue
//! behind traffic, and so the data listener serves only proxied requests.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;

use crate::error::{Body, full};
use crate::forward::Upstream;
use crate::keystore::KeyStore;

/// A readiness probe that waits longer than this on the app says "not ready".
const UPSTREAM_PROBE_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub struct Admin {
    pub keys: Arc<KeyStore>,
    pub upstream: Upstream,
    pub metrics: PrometheusHandle,
    pub draining: Arc<AtomicBool>,
}

impl Admin {
    async fn handle(&self, request: Request<Incoming>) -> Response<Body> {
        if request.method() != Method::GET && request.method() != Method::HEAD {
            return text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        }
        match request.uri().path() {
            "/healthz" => text(StatusCode::OK, "ok\n"),
            "/readyz" => match self.not_ready_reason().await {
                None => text(StatusCode::OK, "ready\n"),
                Some(reason) => text(StatusCode::SERVICE_UNAVAILABLE, &format!("{reason}\n")),
            },
            "/metrics" => {
                self.keys.export_gauges();
                self.metrics.run_upkeep();
                let mut response = Response::new(full(self.metrics.render()));
                response.headers_mut().insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
                );
                response
            }
            _ => text(StatusCode::NOT_FOUND, "not found\n"),
        }
    }

    async fn not_ready_reason(&self) -> Option<&'static str> {
        if self.draining.load(Ordering::SeqCst) {
            return Some("draining");
        }
        if let Some(reason) = self.keys.unusable_reason() {
            return Some(reason);
        }
        if !self.upstream.reachable(UPSTREAM_PROBE_TIMEOUT).await {
            return Some("upstream unreachable");
        }
        None
    }
}

fn text(status: StatusCode, body: &str) -> Response<Body> {
    let mut response = Response::new(full(body.to_owned()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

pub async fn serve(listener: TcpListener, admin: Arc<Admin>) {
    let builder = auto::Builder::new(TokioExecutor::new());
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let admin = Arc::clone(&admin);
        let service = service_fn(move |request| {
            let admin = Arc::clone(&admin);
            async move { Ok::<_, Infallible>(admin.handle(request).await) }
        });
        let connection = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        tokio::spawn(async move {
            let _ = connection.await;
        });
    }
}
