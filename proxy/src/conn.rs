//! One client connection's lifetime: every state has a bound.
//!
//! | state | bound | on expiry |
//! |---|---|---|
//! | new connection, no complete request head yet | `PROXY_HEADER_READ_TIMEOUT` from accept | closed |
//! | later request head arriving | `PROXY_HEADER_READ_TIMEOUT` from its first byte | closed |
//! | idle between requests (HTTP/1.1 keep-alive, or HTTP/2 with no stream open) | `PROXY_IDLE_TIMEOUT` | closed (HTTP/2: GOAWAY first) |
//! | request body arriving | `PROXY_BODY_IDLE_TIMEOUT` without a byte | 408 (see [`crate::forward`]) |
//! | response being written to a client that stopped reading | `PROXY_BODY_IDLE_TIMEOUT` without progress | closed |
//! | waiting for the app's response head | `PROXY_UPSTREAM_TIMEOUT`, from the end of the request body | 504 |
//!
//! hyper's own HTTP/1 `header_read_timeout` is not used: since hyper 1.6 it
//! also runs while a keep-alive connection is idle, which turns it into an
//! idle timeout of 10 s. An AWS load balancer keeps idle connections to its
//! targets for its `idle_timeout` (65 s here) and reuses them; a target that
//! closes first loses the race and the load balancer answers 502 without
//! the proxy ever seeing a request. AWS's guidance: the target's keep-alive
//! timeout must be longer than the load balancer's idle timeout
//! (Application Load Balancers guide, "Connection idle timeout").
//!
//! So the connection is supervised here instead: [`TimedIo`] (under
//! hyper's `TokioIo`) notes when the
//! bytes of a new request head start to arrive and bounds stalled writes;
//! [`ConnState`] counts requests in flight (the service marks their start,
//! the response body its end); [`supervise`] sleeps until the state's next
//! deadline and closes the connection when one passes.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use retainwise_linger::LingeringStream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{Notify, watch};
use tokio::time::{Instant, Sleep};

use crate::metrics as m;

/// How long a connection told to shut down (idle expiry, drain) gets to
/// close by itself before it is dropped: enough for an HTTP/2 GOAWAY to go
/// out and be read.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// Marks "no time recorded" in the millisecond fields.
const NONE: u64 = u64::MAX;

/// The client-side time limits, from the settings.
#[derive(Debug, Clone, Copy)]
pub struct ClientTimeouts {
    pub header_read: Duration,
    pub idle: Duration,
    pub body_idle: Duration,
    /// An idle HTTP/1.1 connection is parked after this (see
    /// [`crate::park`]); not a setting.
    pub park_after: Duration,
}

/// What the connection's parts tell the supervisor.
#[derive(Debug)]
pub struct ConnState {
    origin: Instant,
    /// Requests whose response has not been written completely yet.
    active: AtomicUsize,
    /// Requests started on this connection so far.
    served: AtomicU64,
    /// Milliseconds since `origin` when the connection last became idle.
    idle_since: AtomicU64,
    /// Milliseconds since `origin` when the first byte of the next request
    /// head arrived; `NONE` while none has.
    head_started: AtomicU64,
    /// The client opened with the HTTP/2 preface: idleness is "no stream
    /// open", and heads are framed by HTTP/2 itself.
    h2: AtomicBool,
    /// Served by hyper's HTTP/1 connection, which can hand the socket back:
    /// an idle connection may be parked (see [`crate::park`]).
    parkable: AtomicBool,
    /// The supervisor asked the reader to end hyper's connection at the
    /// next read that would wait.
    park: AtomicBool,
    changed: Notify,
}

impl ConnState {
    pub fn new() -> Arc<Self> {
        Arc::new(ConnState {
            origin: Instant::now(),
            active: AtomicUsize::new(0),
            served: AtomicU64::new(0),
            idle_since: AtomicU64::new(0),
            head_started: AtomicU64::new(NONE),
            h2: AtomicBool::new(false),
            parkable: AtomicBool::new(false),
            park: AtomicBool::new(false),
            changed: Notify::new(),
        })
    }

    fn now_ms(&self) -> u64 {
        self.origin.elapsed().as_millis() as u64
    }

    fn at(&self, ms: u64) -> Instant {
        self.origin + Duration::from_millis(ms)
    }

    /// The connection is served by hyper's HTTP/1 connection, which can be
    /// parked when idle.
    pub fn set_parkable(&self) {
        self.parkable.store(true, Ordering::Release);
    }

    /// The parked connection's client sent again: parking may be asked
    /// anew, [`PARK_AFTER`](crate::park::PARK_AFTER) from now (not from the
    /// last response, which would park the new connection at once, before
    /// hyper has parsed what arrived).
    pub fn unpark(&self) {
        self.idle_since.store(self.now_ms(), Ordering::Release);
        self.park.store(false, Ordering::Release);
    }

    /// Whether a read that would wait should end hyper's connection
    /// instead: parking was asked, and no request is in flight or arriving.
    fn parks_now(&self) -> bool {
        self.park.load(Ordering::Acquire)
            && self.active.load(Ordering::Acquire) == 0
            && self.head_started.load(Ordering::Acquire) == NONE
    }

    /// A request head was read and handed to the service.
    pub fn request_started(self: &Arc<Self>) -> RequestGuard {
        self.active.fetch_add(1, Ordering::AcqRel);
        self.served.fetch_add(1, Ordering::AcqRel);
        self.head_started.store(NONE, Ordering::Release);
        self.changed.notify_one();
        RequestGuard(Arc::clone(self))
    }

    fn request_finished(&self) {
        if self.active.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.idle_since.store(self.now_ms(), Ordering::Release);
            self.head_started.store(NONE, Ordering::Release);
            self.changed.notify_one();
        }
    }

    /// Bytes arrived from the client.
    fn bytes_read(&self, first: &[u8]) {
        if self.served.load(Ordering::Acquire) == 0
            && self.head_started.load(Ordering::Acquire) == NONE
            && first.starts_with(b"PRI * HTTP/2.0")
        {
            self.h2.store(true, Ordering::Release);
        }
        if self.active.load(Ordering::Acquire) == 0
            && self.head_started.load(Ordering::Acquire) == NONE
        {
            self.head_started.store(self.now_ms(), Ordering::Release);
            self.changed.notify_one();
        }
    }

    /// The next deadline and what it bounds; `None` while a request is in
    /// flight (its own timeouts bound it).
    fn deadline(&self, limits: &ClientTimeouts) -> Option<(Instant, Expiry)> {
        if self.active.load(Ordering::Acquire) > 0 {
            return None;
        }
        let idle_since = self.idle_since.load(Ordering::Acquire);
        if self.h2.load(Ordering::Acquire) {
            return Some((self.at(idle_since) + limits.idle, Expiry::Idle));
        }
        let head_started = self.head_started.load(Ordering::Acquire);
        if head_started != NONE {
            return Some((
                self.at(head_started) + limits.header_read,
                Expiry::HeaderRead,
            ));
        }
        if self.served.load(Ordering::Acquire) == 0 {
            // A new connection owes us a request head from the moment it
            // was accepted, not from its first byte.
            return Some((self.origin + limits.header_read, Expiry::HeaderRead));
        }
        if self.parkable.load(Ordering::Acquire)
            && !self.park.load(Ordering::Acquire)
            && limits.park_after < limits.idle
        {
            return Some((self.at(idle_since) + limits.park_after, Expiry::Park));
        }
        Some((self.at(idle_since) + limits.idle, Expiry::Idle))
    }

    /// When a connection idle since its last response is parked (see
    /// [`crate::park`]), or, if the idle bound comes first, that bound.
    pub fn park_deadline(&self, limits: &ClientTimeouts) -> Instant {
        self.at(self.idle_since.load(Ordering::Acquire)) + limits.park_after.min(limits.idle)
    }

    /// The deadline of a parked connection: the idle bound.
    pub fn parked_deadline(&self, limits: &ClientTimeouts) -> Instant {
        self.at(self.idle_since.load(Ordering::Acquire)) + limits.idle
    }
}

/// Which bound passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expiry {
    HeaderRead,
    Idle,
    /// Not a limit: idle long enough to give hyper's buffers back.
    Park,
}

impl Expiry {
    fn kind(self) -> &'static str {
        match self {
            Expiry::HeaderRead => "header_read",
            Expiry::Idle => "idle",
            Expiry::Park => "park",
        }
    }
}

/// Held while a request is in flight; dropped with its response body,
/// which hyper drops once the body is written (or the connection is gone).
#[derive(Debug)]
pub struct RequestGuard(Arc<ConnState>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.0.request_finished();
    }
}

/// A response body that ends the request's time in flight when dropped.
#[derive(Debug)]
pub struct GuardedBody<B> {
    inner: B,
    _guard: RequestGuard,
}

impl<B> GuardedBody<B> {
    pub fn new(inner: B, guard: RequestGuard) -> Self {
        GuardedBody {
            inner,
            _guard: guard,
        }
    }
}

impl<B: HttpBody<Data = Bytes> + Unpin> HttpBody for GuardedBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The client socket under hyper (wrapped in `TokioIo`): reads tell
/// [`ConnState`] when a new request head starts; a write that makes no
/// progress for the body idle time fails, so a client that stopped reading
/// cannot hold the connection (and the app's response) for ever.
#[derive(Debug)]
pub struct TimedIo {
    inner: LingeringStream,
    state: Arc<ConnState>,
    write_stall: Duration,
    /// Armed while a write is pending.
    stalled: Option<Pin<Box<Sleep>>>,
    /// A read ended hyper's connection to park it (an end of file that the
    /// client did not send).
    parked: bool,
    /// The last bytes read, up to three, before the newest read.
    tail: [u8; 3],
    /// The bytes read so far end with an empty line: what hyper holds
    /// unparsed is whole request heads or nothing, never part of one. Only
    /// then may a read end the connection to park it: a pipelined request
    /// cut in two by the network must not be lost.
    at_head_end: bool,
    /// Bytes already read from the socket (by [`crate::fastpath`]) that
    /// the next reads return before the socket's.
    prefix: Bytes,
}

impl TimedIo {
    pub fn new(stream: LingeringStream, state: Arc<ConnState>, write_stall: Duration) -> Self {
        TimedIo {
            inner: stream,
            state,
            write_stall,
            stalled: None,
            parked: false,
            tail: [0; 3],
            at_head_end: true,
            prefix: Bytes::new(),
        }
    }

    /// Hands bytes read past a request head back, for hyper to read first.
    /// They were counted as read when they came from the socket.
    pub fn unread(&mut self, bytes: Bytes) {
        debug_assert!(
            self.prefix.is_empty(),
            "unread twice without a read between"
        );
        self.prefix = bytes;
    }

    /// The socket, for waiting on it without a buffer.
    pub fn stream(&self) -> &LingeringStream {
        &self.inner
    }

    /// Whether the connection ended because it was parked, not because
    /// the client closed or an error.
    pub fn parked(&self) -> bool {
        self.parked
    }

    /// The socket, for the parked wait.
    pub fn into_inner(self) -> LingeringStream {
        self.inner
    }

    /// Passes a write's result through, turning a write that has been
    /// pending for the stall time into an error.
    fn check_stall<T>(
        &mut self,
        cx: &mut Context<'_>,
        result: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if result.is_ready() {
            self.stalled = None;
            return result;
        }
        let limit = self.write_stall;
        let timer = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        if timer.as_mut().poll(cx).is_ready() {
            metrics::counter!(m::CLIENT_TIMEOUTS, "kind" => "response_write").increment(1);
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client read nothing of the response for the body idle time",
            )));
        }
        Poll::Pending
    }
}

impl AsyncRead for TimedIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        if !this.prefix.is_empty() {
            let n = this.prefix.len().min(buf.remaining());
            buf.put_slice(&this.prefix.split_to(n));
            return Poll::Ready(Ok(()));
        }
        if this.parked {
            return Poll::Ready(Ok(()));
        }
        let Poll::Ready(result) = Pin::new(&mut this.inner).poll_read(cx, buf) else {
            if this.at_head_end && this.state.parks_now() {
                // Nothing to read and nothing owed: an end of file makes
                // hyper end the connection and hand the socket back.
                this.parked = true;
                return Poll::Ready(Ok(()));
            }
            return Poll::Pending;
        };
        result?;
        let read = &buf.filled()[before..];
        if !read.is_empty() {
            this.state.bytes_read(read);
            (this.tail, this.at_head_end) = head_end(this.tail, read);
        }
        Poll::Ready(Ok(()))
    }
}

/// The last three bytes after `read`, and whether the bytes end with an
/// empty line (CRLF CRLF, or the bare LF that HTTP/1.1 parsers accept,
/// RFC 9112 section 2.2).
fn head_end(tail: [u8; 3], read: &[u8]) -> ([u8; 3], bool) {
    let mut last = [0u8; 4];
    let take = read.len().min(4);
    let keep = 4 - take;
    last[..keep].copy_from_slice(&tail[3 - keep..]);
    last[keep..].copy_from_slice(&read[read.len() - take..]);
    let ends = last.ends_with(b"\n\n") || last.ends_with(b"\n\r\n");
    ([last[1], last[2], last[3]], ends)
}

impl AsyncWrite for TimedIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.check_stall(cx, result)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.check_stall(cx, result)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Drives `connection` until it ends (its output), a bound in `state`
/// passes, or `stop` turns true (the process is draining) (`None`).
/// `shut_down` asks the connection to close politely (hyper's
/// `graceful_shutdown`: HTTP/1 closes once idle, HTTP/2 sends GOAWAY).
pub async fn supervise<C: Future>(
    connection: C,
    shut_down: fn(Pin<&mut C>),
    state: &ConnState,
    limits: ClientTimeouts,
    stop: &mut watch::Receiver<bool>,
) -> Option<C::Output> {
    let mut connection = std::pin::pin!(connection);
    let mut stopping = *stop.borrow();
    if stopping {
        shut_down(connection.as_mut());
    }
    // One timer and one shutdown wait for the connection's life, moved
    // rather than made again each time a request starts or ends: making
    // them anew twice per request (a timer registered and cancelled, a
    // watch waiter linked and unlinked) cost 1,200 of the proxy's 57,500
    // instructions a request (callgrind, issue 11).
    let mut far = far_future();
    let mut sleep_until = deadline_or(state.deadline(&limits), far);
    let sleep = tokio::time::sleep_until(sleep_until);
    let mut sleep = std::pin::pin!(sleep);
    // A timer that fired stays ready; it is set again even to the same
    // instant, so a deadline that still holds is checked once more.
    let mut armed = true;
    let stop_changed = stop.changed();
    let mut stop_changed = std::pin::pin!(stop_changed);
    loop {
        let changed = state.changed.notified();
        let at = deadline_or(state.deadline(&limits), far);
        if at != sleep_until || !armed {
            sleep_until = at;
            armed = true;
            sleep.as_mut().reset(at);
        }
        tokio::select! {
            output = connection.as_mut() => return Some(output),
            () = changed => {}
            result = stop_changed.as_mut(), if !stopping => {
                stopping = true;
                if result.is_ok() {
                    shut_down(connection.as_mut());
                }
            }
            () = sleep.as_mut() => {
                armed = false;
                // Re-read: a request may have started while we slept.
                let Some((at, expiry)) = state.deadline(&limits) else {
                    // The far future came (a request of a year): move it.
                    far = far_future();
                    continue;
                };
                if Instant::now() < at {
                    continue;
                }
                if expiry == Expiry::Park {
                    // Polling the connection again makes its next read
                    // the end of file that ends it.
                    state.park.store(true, Ordering::Release);
                    continue;
                }
                metrics::counter!(m::CLIENT_TIMEOUTS, "kind" => expiry.kind()).increment(1);
                if expiry == Expiry::Idle {
                    // Idle: nothing is lost by closing politely (HTTP/2
                    // sends GOAWAY); a stuck close is dropped after the grace.
                    shut_down(connection.as_mut());
                    let _ = tokio::time::timeout(SHUTDOWN_GRACE, connection.as_mut()).await;
                }
                tracing::debug!(kind = expiry.kind(), "closing the connection");
                return None;
            }
        }
    }
}

fn deadline_or(deadline: Option<(Instant, Expiry)>, far: Instant) -> Instant {
    deadline.map_or(far, |(at, _)| at)
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365)
}

#[cfg(test)]
mod tests {
    use super::head_end;

    /// Feeds `reads` one by one and says whether the bytes end a head.
    fn ends(reads: &[&[u8]]) -> bool {
        let mut state = ([0u8; 3], true);
        for read in reads {
            state = head_end(state.0, read);
        }
        state.1
    }

    #[test]
    fn a_head_ends_with_an_empty_line_however_the_reads_split_it() {
        let head: &[u8] = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        assert!(ends(&[head]));
        for cut in 1..head.len() {
            assert!(ends(&[&head[..cut], &head[cut..]]), "cut at {cut}");
            assert!(!ends(&[&head[..cut]]), "only {cut} bytes");
        }
        let bytes: Vec<&[u8]> = head.chunks(1).collect();
        assert!(ends(&bytes));
        assert!(ends(&[b"GET / HTTP/1.1\nHost: a\n\n"]));
    }

    #[test]
    fn a_second_head_cut_short_or_a_body_is_not_an_end() {
        let two = b"GET / HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\nHo";
        assert!(!ends(&[two]));
        assert!(!ends(&[
            b"POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\n",
            b"ab"
        ]));
        assert!(ends(&[b"POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\n"]));
        // A chunked body's last chunk ends with an empty line too.
        assert!(ends(&[b"2\r\nab\r\n0\r\n\r\n"]));
        assert!(!ends(&[b"\r\n"]));
    }
}
