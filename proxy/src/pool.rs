//! Kept-alive HTTP/1.1 connections to the app, one `SendRequest` each.
//!
//! In place of hyper-util's pooled client: that client keys its pool by
//! scheme and authority in a SipHash map, and for every HTTP/1.1 exchange
//! spawns a task whose only job is to put the connection back once the
//! response body is done. The proxy talks to one app, so the pool is a
//! stack, and a connection goes back when the proxy itself sees the end of
//! the response body. Measured with callgrind at one token and 50
//! connections (issue 11): see the README's benchmark section.
//!
//! What the pooled client did that this keeps:
//! - connect timeout, `TCP_NODELAY`, TCP keepalive;
//! - a request that never left because its kept-alive connection had just
//!   closed is sent again once, on a new connection (hyper hands the
//!   request back, [`hyper::client::conn::TrySendError`]);
//! - a connection idle for longer than [`POOL_IDLE_TIMEOUT`] is not used
//!   again (closed when next found), so the proxy, not the app, ends idle
//!   connections and never writes into one the app is closing;
//! - at most [`POOL_MAX_IDLE`] idle connections.
//!
//! And one thing it did not do. An app that closes a kept-alive connection
//! just after a response (a limit of requests per connection, an idle
//! timeout) races the proxy's next request on it: the request is written,
//! the connection ends, no response comes. hyper-util's client answered
//! 502 (5 of 50 requests in `tests/upstream_pool.rs`). A request that may
//! be sent twice without harm is sent again once, on a new connection:
//! one whose method is idempotent (RFC 9110 §9.2.2: the client "can
//! automatically retry" it) and which has no body, when it failed on a
//! kept-alive connection before any response head. Anything else (a POST,
//! an upload) gets the 502, since the app may have acted on it; nginx's
//! `proxy_next_upstream` draws the same line.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::forward::RequestBody;

/// Idle keep-alive connections to the app are not used after this; the
/// app's own idle timeout should be longer so the proxy is the one that
/// closes.
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Enough warm connections for bursts without holding file descriptors idle.
pub const POOL_MAX_IDLE: usize = 256;

/// Why no response came from the app.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// No TCP connection could be opened within the connect timeout.
    #[error("cannot connect to the app: {0}")]
    Connect(std::io::Error),
    /// The connection broke, or the app answered with something that is
    /// not HTTP/1.1.
    #[error("the exchange with the app failed: {0}")]
    Http(#[from] hyper::Error),
}

#[derive(Debug)]
struct Idle {
    sender: SendRequest<RequestBody>,
    since: Instant,
}

/// Connections to one app address.
#[derive(Debug)]
pub struct Pool {
    host: String,
    port: u16,
    connect_timeout: Duration,
    /// Most recently used last: the warmest connection goes out first.
    idle: Mutex<Vec<Idle>>,
}

impl Pool {
    /// `host` without brackets (an IPv6 literal is fine), `port` as given.
    pub fn new(host: String, port: u16, connect_timeout: Duration) -> Arc<Self> {
        Arc::new(Pool {
            host,
            port,
            connect_timeout,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// Sends `request` (origin-form target, `Host` set) and waits for the
    /// response head. The response body hands the connection back to the
    /// pool when it ends.
    pub async fn send(
        self: &Arc<Self>,
        request: Request<RequestBody>,
    ) -> Result<Response<PooledBody>, ExchangeError> {
        let mut request = request;
        // Once on a kept-alive connection, then, if that one turned out to
        // be closing, once on a new one.
        let mut fresh_only = false;
        loop {
            let (mut sender, reused) = self.checkout(fresh_only).await?;
            // Kept only when it could be needed: cloning the head for
            // every request would cost what the pool saves.
            let replay = (reused && replayable(&request)).then(|| Replay::of(&request));
            match sender.try_send_request(request).await {
                Ok(response) => {
                    let mut lease = Some(Lease {
                        pool: Arc::clone(self),
                        sender,
                    });
                    if response.body().is_end_stream()
                        && let Some(lease) = lease.take()
                    {
                        lease.release();
                    }
                    return Ok(response.map(|inner| PooledBody { inner, lease }));
                }
                Err(mut failed) => {
                    request = match (failed.take_message(), replay) {
                        // It never left: send it as it is.
                        (Some(unsent), _) if reused => unsent,
                        (None, Some(replay)) if !failed.error().is_parse() => {
                            tracing::debug!(
                                error = %failed.error(),
                                "a kept-alive connection to the app closed under a request; sending it again"
                            );
                            replay.request()
                        }
                        _ => return Err(ExchangeError::Http(failed.into_error())),
                    };
                    fresh_only = true;
                }
            }
        }
    }

    /// A connection ready for a request: the most recent idle one that
    /// still is, or a new one. `bool`: whether it was kept alive.
    async fn checkout(
        &self,
        fresh_only: bool,
    ) -> Result<(SendRequest<RequestBody>, bool), ExchangeError> {
        if !fresh_only {
            while let Some(mut idle) = self.take_idle() {
                // Usually ready at once; a connection put back the moment
                // its response body ended may need its task to run first.
                if idle.sender.ready().await.is_ok() {
                    return Ok((idle.sender, true));
                }
            }
        }
        Ok((self.connect().await?, false))
    }

    fn take_idle(&self) -> Option<Idle> {
        let mut idle = self
            .idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = Instant::now();
        // The stack is oldest first: once one is too old, so is all below.
        if let Some(fresh) = idle
            .iter()
            .position(|conn| now.duration_since(conn.since) < POOL_IDLE_TIMEOUT)
        {
            idle.drain(..fresh);
        } else {
            idle.clear();
        }
        idle.pop()
    }

    fn put(&self, sender: SendRequest<RequestBody>) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self
            .idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if idle.len() < POOL_MAX_IDLE {
            idle.push(Idle {
                sender,
                since: Instant::now(),
            });
        }
    }

    /// Whether a TCP connection to the app opens within `timeout`.
    pub async fn reachable(&self, timeout: Duration) -> bool {
        let connecting = TcpStream::connect((self.host.as_str(), self.port));
        matches!(tokio::time::timeout(timeout, connecting).await, Ok(Ok(_)))
    }

    async fn connect(&self) -> Result<SendRequest<RequestBody>, ExchangeError> {
        let connecting = TcpStream::connect((self.host.as_str(), self.port));
        let stream = match tokio::time::timeout(self.connect_timeout, connecting).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(err)) => return Err(ExchangeError::Connect(err)),
            Err(_) => {
                return Err(ExchangeError::Connect(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no connection within {:?}", self.connect_timeout),
                )));
            }
        };
        let _ = stream.set_nodelay(true);
        let _ = socket2::SockRef::from(&stream)
            .set_tcp_keepalive(&socket2::TcpKeepalive::new().with_time(Duration::from_secs(60)));
        let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(error = %err, "connection to the app ended");
            }
        });
        Ok(sender)
    }
}

/// Whether `request` may be sent again after it was written: an
/// idempotent method (RFC 9110 §9.2.2) and no body.
fn replayable(request: &Request<RequestBody>) -> bool {
    use http::Method;
    matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    ) && request.body().is_end_stream()
}

/// What it takes to send a body-less request again.
#[derive(Debug)]
struct Replay {
    head: http::request::Parts,
    idle: Duration,
}

impl Replay {
    fn of(request: &Request<RequestBody>) -> Self {
        let mut head = Request::new(()).into_parts().0;
        head.method = request.method().clone();
        head.uri = request.uri().clone();
        head.version = request.version();
        head.headers = request.headers().clone();
        Replay {
            head,
            idle: request.body().idle(),
        }
    }

    fn request(self) -> Request<RequestBody> {
        Request::from_parts(self.head, RequestBody::empty(self.idle))
    }
}

/// A connection lent to one exchange.
#[derive(Debug)]
struct Lease {
    pool: Arc<Pool>,
    sender: SendRequest<RequestBody>,
}

impl Lease {
    fn release(self) {
        self.pool.put(self.sender);
    }
}

/// The app's response body; its connection goes back to the pool when the
/// body has been read to its end, and is closed when the body is dropped
/// before that (the rest of it would still be on the wire).
#[derive(Debug)]
pub struct PooledBody {
    inner: Incoming,
    lease: Option<Lease>,
}

impl PooledBody {
    fn release(&mut self) {
        if let Some(lease) = self.lease.take() {
            lease.release();
        }
    }
}

impl HttpBody for PooledBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            // hyper stops polling a body that says it has ended, so the
            // end is taken from `is_end_stream` as well as from `None`.
            Poll::Ready(Some(Ok(_))) if this.inner.is_end_stream() => this.release(),
            Poll::Ready(None) => this.release(),
            Poll::Ready(Some(Err(_))) => this.lease = None,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
