//! The hop to the app: pooled HTTP/1.1 connections ([`crate::pool`]) with
//! timeouts.
//!
//! The wait for the response head is bounded here.
//! Bodies are never buffered: the request body streams to the app as it
//! arrives and the response body streams back the same way.
//!
//! Two clocks, never one: while the client is still sending its body, only
//! the body idle time applies (no byte for `PROXY_BODY_IDLE_TIMEOUT`: 408);
//! `PROXY_UPSTREAM_TIMEOUT` starts once the body has been forwarded
//! completely. A single clock from the request's start would cut every
//! upload slower than it (a 100 MB file on a 10 Mbit/s uplink takes 80 s)
//! with a 504 while the app may still store it, so the user's retry makes
//! a duplicate. An answer the app sends before the body is complete (its
//! 413 on `Content-Length`) is passed on as it is.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{HOST, HeaderValue};
use http::uri::{Authority, PathAndQuery};
use http::{Request, Response, Uri, Version};
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};

use crate::error::{ProxyError, error_chain};
use crate::metrics as m;
use crate::pool::{ExchangeError, Pool, PooledBody};

#[derive(Debug, Clone)]
pub struct Upstream {
    pool: Arc<Pool>,
    authority: Authority,
    /// `Host` for a request that came without one (HTTP/1.0).
    host: HeaderValue,
    response_timeout: Duration,
}

impl Upstream {
    /// `base`: the app's `http://host:port` (`PROXY_UPSTREAM`).
    pub fn new(base: &Uri, connect_timeout: Duration, response_timeout: Duration) -> Self {
        let authority = base
            .authority()
            .cloned()
            .unwrap_or_else(|| Authority::from_static("127.0.0.1:3000"));
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = authority.port_u16().unwrap_or(80);
        Upstream {
            pool: Pool::new(host, port, connect_timeout),
            host: HeaderValue::from_str(authority.as_str())
                .expect("an authority is a header value"),
            authority,
            response_timeout,
        }
    }

    /// `host:port` of the app, for the readiness probe.
    pub fn authority(&self) -> &Authority {
        &self.authority
    }

    /// Sends the request (already rewritten, its body wrapped in a
    /// [`RequestBody`]) and waits for the response head: while the body is
    /// still arriving, for as long as it keeps moving; then for at most the
    /// response timeout.
    pub async fn send(
        &self,
        mut request: Request<RequestBody>,
    ) -> Result<Response<PooledBody>, ProxyError> {
        // `None`: a body the proxy made empty, complete from the start.
        let progress = request.body().progress.clone();
        // Origin-form, as HTTP/1.1 sends to an origin server (RFC 9112
        // §3.2.1); the app speaks HTTP/1.1 whatever the client spoke to us.
        let path = request
            .uri()
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        *request.uri_mut() = Uri::from(path);
        *request.version_mut() = Version::HTTP_11;
        if !request.headers().contains_key(HOST) {
            request.headers_mut().insert(HOST, self.host.clone());
        }
        let exchange = self.pool.send(request);
        let mut exchange = std::pin::pin!(exchange);
        // Phase 1: the body is still arriving. Its own idle bound applies
        // (inside RequestBody); the response timeout does not run yet.
        let progress = progress.as_deref();
        while let Some(streaming) = progress
            && streaming.state() == BodyState::Streaming
        {
            tokio::select! {
                result = exchange.as_mut() => return self.finish(result, progress),
                () = streaming.changed.notified() => {}
            }
        }
        if progress.is_some_and(|progress| progress.state() == BodyState::Stalled) {
            // The body's error is on its way to the client task; answer
            // now rather than wait for the app to notice.
            return Err(ProxyError::RequestBodyTimeout);
        }
        // Phase 2: the body is complete; the app gets the response timeout.
        match tokio::time::timeout(self.response_timeout, exchange).await {
            Ok(result) => self.finish(result, progress),
            Err(_) => {
                metrics::counter!(m::UPSTREAM_ERRORS, "kind" => "timeout").increment(1);
                Err(ProxyError::UpstreamTimeout)
            }
        }
    }

    fn finish(
        &self,
        result: Result<Response<PooledBody>, ExchangeError>,
        progress: Option<&BodyProgress>,
    ) -> Result<Response<PooledBody>, ProxyError> {
        let state = progress.map_or(BodyState::Complete, BodyProgress::state);
        match result {
            Ok(response) => Ok(response),
            Err(_) if state == BodyState::Stalled => Err(ProxyError::RequestBodyTimeout),
            Err(_) if state == BodyState::ClientFailed => Err(ProxyError::ClientBody),
            Err(err) => {
                let connect = matches!(err, ExchangeError::Connect(_));
                let kind = if connect { "connect" } else { "other" };
                metrics::counter!(m::UPSTREAM_ERRORS, "kind" => kind).increment(1);
                tracing::warn!(error = %error_chain(&err), kind, "upstream request failed");
                Err(if connect {
                    ProxyError::UpstreamConnect
                } else {
                    ProxyError::Upstream
                })
            }
        }
    }

    /// Whether a TCP connection to the app opens: readiness asks only that
    /// the app is there, not that its dependencies are healthy, so a
    /// database blip does not pull every proxy out of the load balancer.
    pub async fn reachable(&self, timeout: Duration) -> bool {
        self.pool.reachable(timeout).await
    }
}

/// Where the request body stands, as the forwarding step sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum BodyState {
    Streaming = 0,
    Complete = 1,
    /// No byte for the body idle time.
    Stalled = 2,
    /// The client's connection broke mid-body.
    ClientFailed = 3,
}

/// Shared between a [`RequestBody`] (polled by the client task that writes
/// to the app) and the request's own task (waiting for the response).
#[derive(Debug)]
pub struct BodyProgress {
    state: AtomicU8,
    changed: tokio::sync::Notify,
}

impl BodyProgress {
    pub fn state(&self) -> BodyState {
        match self.state.load(Ordering::Acquire) {
            0 => BodyState::Streaming,
            1 => BodyState::Complete,
            2 => BodyState::Stalled,
            _ => BodyState::ClientFailed,
        }
    }

    fn set(&self, state: BodyState) {
        self.state.store(state as u8, Ordering::Release);
        self.changed.notify_one();
    }
}

/// Why a request body ended before its end.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the client sent no byte of the request body for {0:?}")]
    Stalled(Duration),
    #[error("the client's request body broke: {0}")]
    Client(#[from] hyper::Error),
}

/// The client's request body on its way to the app, bounded by the body
/// idle time: a client that stops sending mid-body ends the exchange with
/// a 408 instead of holding a connection to the app open for the response
/// timeout.
#[derive(Debug)]
pub struct RequestBody {
    /// `None`: an empty body made by the proxy (a request sent again).
    inner: Option<Incoming>,
    idle: Duration,
    /// When the last frame arrived (or the body was created).
    last_progress: tokio::time::Instant,
    /// Created on the first wait and moved, not reallocated, after that.
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    /// `None` for an empty body made by the proxy, which never changes
    /// state: the fast path made one for each of its requests, an
    /// allocation and a free a request (callgrind, issue 11).
    progress: Option<Arc<BodyProgress>>,
}

impl RequestBody {
    pub fn new(inner: Incoming, idle: Duration) -> Self {
        let state = if inner.is_end_stream() {
            BodyState::Complete
        } else {
            BodyState::Streaming
        };
        RequestBody {
            inner: Some(inner),
            idle,
            last_progress: tokio::time::Instant::now(),
            timer: None,
            progress: Some(Arc::new(BodyProgress {
                state: AtomicU8::new(state as u8),
                changed: tokio::sync::Notify::new(),
            })),
        }
    }

    /// An empty body: a fast-path request's ([`crate::fastpath`]) or a
    /// body-less request's sent again ([`crate::pool`]).
    pub fn empty(idle: Duration) -> Self {
        RequestBody {
            inner: None,
            idle,
            last_progress: tokio::time::Instant::now(),
            timer: None,
            progress: None,
        }
    }

    /// Tells [`Upstream::send`] how the body stands.
    fn report(&self, state: BodyState) {
        if let Some(progress) = &self.progress {
            progress.set(state);
        }
    }

    /// The body idle time it was made with.
    pub fn idle(&self) -> Duration {
        self.idle
    }
}

impl HttpBody for RequestBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        match Pin::new(&mut *inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                this.last_progress = tokio::time::Instant::now();
                if inner.is_end_stream() {
                    this.report(BodyState::Complete);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(err))) => {
                this.report(BodyState::ClientFailed);
                Poll::Ready(Some(Err(BodyError::Client(err))))
            }
            Poll::Ready(None) => {
                this.report(BodyState::Complete);
                Poll::Ready(None)
            }
            Poll::Pending => {
                let idle = this.idle;
                let deadline = this.last_progress + idle;
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if timer.deadline() != deadline {
                    timer.as_mut().reset(deadline);
                }
                if timer.as_mut().poll(cx).is_ready() {
                    metrics::counter!(m::CLIENT_TIMEOUTS, "kind" => "body_idle").increment(1);
                    this.report(BodyState::Stalled);
                    return Poll::Ready(Some(Err(BodyError::Stalled(idle))));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Incoming::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Incoming::size_hint)
    }
}
