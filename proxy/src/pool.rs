//! Kept-alive HTTP/1.1 connections to the app: for a body-less `GET` or
//! `HEAD`, a plain TCP stream the request's task writes and reads
//! ([`crate::h1client`]); for anything else, one hyper `SendRequest` each.
//! Each kind has its own idle stack.
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
//!   request back, [`hyper::client::conn::TrySendError`]; a body-less
//!   request's head is kept and written again);
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
use http::{Method, Request, Response};
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::error::ResponseBodyError;
use crate::forward::RequestBody;
use crate::h1client::{self, RawBody, RawConn, ResponseError};

/// Idle keep-alive connections to the app are not used after this; the
/// app's own idle timeout should be longer so the proxy is the one that
/// closes.
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Enough warm connections for bursts without holding file descriptors
/// idle; for each of the two kinds.
pub const POOL_MAX_IDLE: usize = 256;

/// Why no response came from the app.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// No TCP connection could be opened within the connect timeout.
    #[error("cannot connect to the app: {0}")]
    Connect(std::io::Error),
    /// The connection broke, or the app answered with something that is
    /// not HTTP/1.1 (hyper's client).
    #[error("the exchange with the app failed: {0}")]
    Http(#[from] hyper::Error),
    /// The same, for a body-less request ([`crate::h1client`]).
    #[error("the exchange with the app failed: {0}")]
    Response(#[from] ResponseError),
}

/// Idle connections of one kind, oldest first: the warmest goes out first,
/// and once one is too old, so is every one below it.
#[derive(Debug)]
struct IdleStack<C>(Mutex<Vec<(C, Instant)>>);

impl<C> IdleStack<C> {
    fn new() -> Self {
        IdleStack(Mutex::new(Vec::new()))
    }

    fn take(&self) -> Option<C> {
        let mut idle = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = Instant::now();
        if let Some(fresh) = idle
            .iter()
            .position(|(_, since)| now.duration_since(*since) < POOL_IDLE_TIMEOUT)
        {
            idle.drain(..fresh);
        } else {
            idle.clear();
        }
        idle.pop().map(|(conn, _)| conn)
    }

    fn put(&self, conn: C) {
        let mut idle = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if idle.len() < POOL_MAX_IDLE {
            idle.push((conn, Instant::now()));
        }
    }
}

/// Connections to one app address.
#[derive(Debug)]
pub struct Pool {
    host: String,
    port: u16,
    connect_timeout: Duration,
    hyper: IdleStack<SendRequest<RequestBody>>,
    raw: IdleStack<RawConn>,
}

impl Pool {
    /// `host` without brackets (an IPv6 literal is fine), `port` as given.
    pub fn new(host: String, port: u16, connect_timeout: Duration) -> Arc<Self> {
        Arc::new(Pool {
            host,
            port,
            connect_timeout,
            hyper: IdleStack::new(),
            raw: IdleStack::new(),
        })
    }

    /// Sends `request` (origin-form target, `Host` set) and waits for the
    /// response head. The response body hands the connection back to the
    /// pool when it ends.
    pub async fn send(
        self: &Arc<Self>,
        request: Request<RequestBody>,
    ) -> Result<Response<PooledBody>, ExchangeError> {
        if h1client::takes(&request) {
            return self.send_raw(&request).await;
        }
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
                    let mut response = response.map(|body| PooledBody {
                        inner: Inner::Hyper {
                            body,
                            sender: Some(sender),
                        },
                        pool: Some(Arc::clone(self)),
                    });
                    response.body_mut().release(false);
                    return Ok(response);
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

    /// A body-less `GET` or `HEAD`, without hyper's client: such a request
    /// may always be sent again (RFC 9110 §9.2.2), so one that met a
    /// kept-alive connection closing under it, before any byte of a
    /// response, is written once more on a new connection.
    async fn send_raw(
        self: &Arc<Self>,
        request: &Request<RequestBody>,
    ) -> Result<Response<PooledBody>, ExchangeError> {
        let head = h1client::encode_head(request);
        let head_only = request.method() == Method::HEAD;
        // Written after the other tasks that are ready have run (tokio
        // defers a yielded task's wake until it has polled for I/O): every
        // write to the app wakes it, and on a shared core it preempts the
        // proxy, so writes made together let the proxy finish more
        // requests between two preemptions, as hyper's separate connection
        // task did. Measured with one token (issue 11): 0.73-0.85 context
        // switches a request without this, 0.43-0.46 with it (hyper's
        // client: 0.53-0.55), for 1,200 more instructions (callgrind).
        // Before the idle connection is chosen, so that what the app said
        // on it meanwhile has been seen.
        tokio::task::yield_now().await;
        let mut kept = None;
        while let Some(mut conn) = self.raw.take() {
            if conn.is_quiet() {
                kept = Some(conn);
                break;
            }
        }
        loop {
            let reused = kept.is_some();
            let conn = match kept.take() {
                Some(conn) => conn,
                None => RawConn::new(self.open().await?),
            };
            match h1client::exchange(conn, &head, head_only).await {
                Ok(response) => {
                    let mut response = response.map(|raw| PooledBody {
                        inner: Inner::Raw(raw),
                        pool: Some(Arc::clone(self)),
                    });
                    // A body that came whole with the head (the usual small
                    // response) frees its connection now.
                    response.body_mut().release(false);
                    return Ok(response);
                }
                Err(ResponseError::NoResponse(cause)) if reused => {
                    tracing::debug!(
                        error = ?cause,
                        "a kept-alive connection to the app closed under a request; sending it again"
                    );
                }
                Err(err) => return Err(ExchangeError::Response(err)),
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
            while let Some(mut sender) = self.hyper.take() {
                // Usually ready at once; a connection put back the moment
                // its response body ended may need its task to run first.
                if sender.ready().await.is_ok() {
                    return Ok((sender, true));
                }
            }
        }
        Ok((self.connect().await?, false))
    }

    /// Whether a TCP connection to the app opens within `timeout`.
    pub async fn reachable(&self, timeout: Duration) -> bool {
        let connecting = TcpStream::connect((self.host.as_str(), self.port));
        matches!(tokio::time::timeout(timeout, connecting).await, Ok(Ok(_)))
    }

    /// A new TCP connection to the app, within the connect timeout.
    async fn open(&self) -> Result<TcpStream, ExchangeError> {
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
        Ok(stream)
    }

    async fn connect(&self) -> Result<SendRequest<RequestBody>, ExchangeError> {
        let stream = self.open().await?;
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

#[derive(Debug)]
enum Inner {
    /// Read by hyper's client; `sender` is its connection.
    Hyper {
        body: Incoming,
        sender: Option<SendRequest<RequestBody>>,
    },
    /// Read by the proxy's own client, which holds its connection.
    Raw(RawBody),
}

/// The app's response body; its connection goes back to the pool when the
/// body has been read to its end, and is closed when the body is dropped
/// before that (the rest of it would still be on the wire).
#[derive(Debug)]
pub struct PooledBody {
    inner: Inner,
    /// `None` once the connection went back, or cannot.
    pool: Option<Arc<Pool>>,
}

impl PooledBody {
    /// Hands the connection back once the body has ended (`ended`: it
    /// has just said so with `None`); a raw one once its body has been
    /// read off it, handed on or not.
    fn release(&mut self, ended: bool) {
        let Some(pool) = self.pool.as_ref() else {
            return;
        };
        let released = match &mut self.inner {
            Inner::Hyper { body, sender } if ended || body.is_end_stream() => {
                if let Some(sender) = sender.take().filter(|sender| !sender.is_closed()) {
                    pool.hyper.put(sender);
                }
                true
            }
            Inner::Hyper { .. } => false,
            Inner::Raw(raw) => raw.take_reusable().map(|conn| pool.raw.put(conn)).is_some(),
        };
        if released {
            self.pool = None;
        }
    }
}

impl HttpBody for PooledBody {
    type Data = Bytes;
    type Error = ResponseBodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ResponseBodyError>>> {
        let this = &mut *self;
        let polled: Poll<Option<Result<Frame<Bytes>, ResponseBodyError>>> = match &mut this.inner {
            Inner::Hyper { body, .. } => Pin::new(body)
                .poll_frame(cx)
                .map(|frame| frame.map(|frame| frame.map_err(Into::into))),
            Inner::Raw(raw) => Pin::new(raw)
                .poll_frame(cx)
                .map(|frame| frame.map(|frame| frame.map_err(Into::into))),
        };
        match &polled {
            // hyper stops polling a body that says it has ended, so the
            // end is taken from `is_end_stream` as well as from `None`.
            Poll::Ready(Some(Ok(_))) => this.release(false),
            Poll::Ready(None) => this.release(true),
            Poll::Ready(Some(Err(_))) => this.pool = None,
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::Hyper { body, .. } => body.is_end_stream(),
            Inner::Raw(raw) => raw.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Hyper { body, .. } => body.size_hint(),
            Inner::Raw(raw) => raw.size_hint(),
        }
    }
}
