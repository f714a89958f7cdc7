//! Idle HTTP/1.1 connections hold no buffers.
//!
//! hyper allocates an 8 KiB read buffer and an 8 KiB buffer for response
//! heads with each HTTP/1 connection and keeps both for its whole life,
//! idle or not; with 10,000 keep-alive connections from a load balancer
//! that was most of the proxy's memory (`scripts/bench-proxy.sh`). nginx
//! frees its request buffers while a keep-alive connection waits, and
//! Kestrel and nghttpx do the same.
//!
//! So a connection idle for [`PARK_AFTER`] is parked: the supervisor asks
//! the reader ([`TimedIo`]) to answer hyper's next read that would wait
//! with an end of file, hyper ends the connection without shutting the
//! socket down and hands it back ([`Http1`]), and the socket alone waits
//! for the client's next byte ([`wait_parked`]), within the idle bound.
//! Then a new hyper connection serves it, on the same [`ConnState`], so
//! the head and idle bounds run on as if nothing happened.
//!
//! Only a connection with nothing in flight and nothing arriving is
//! parked: no request is in flight, no byte of a next head has been read,
//! and the socket had nothing to read at that moment. A busy connection
//! (requests milliseconds apart) is never parked, so parking costs the hot
//! path nothing.

use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use hyper::body::{Body, Incoming};
use hyper::server::conn::http1::{Connection, Parts};
use hyper::service::HttpService;
use hyper_util::rt::TokioIo;
use retainwise_linger::LingeringStream;
use tokio::sync::watch;

use crate::conn::{ClientTimeouts, ConnState, TimedIo};
use crate::metrics as m;

/// How long a keep-alive connection waits with its buffers before it is
/// parked: far above the gap between requests on a busy connection, far
/// below any idle bound.
pub const PARK_AFTER: Duration = Duration::from_millis(250);

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// hyper's HTTP/1 connection, ending with its parts (the socket and any
/// bytes read past the last request) instead of a shutdown of the socket.
#[derive(Debug)]
pub struct Http1<S: HttpService<Incoming>> {
    /// `None` once it ended.
    connection: Option<Connection<TokioIo<TimedIo>, S>>,
}

impl<S: HttpService<Incoming>> Http1<S> {
    pub fn new(connection: Connection<TokioIo<TimedIo>, S>) -> Self {
        Http1 {
            connection: Some(connection),
        }
    }
}

impl<S, B> Http1<S>
where
    S: HttpService<Incoming, ResBody = B> + Unpin,
    S::Future: Unpin,
    S::Error: Into<BoxError>,
    B: Body + 'static,
    B::Error: Into<BoxError>,
{
    /// hyper's `graceful_shutdown`: close once the request in flight is
    /// answered.
    pub fn graceful_shutdown(&mut self) {
        if let Some(connection) = self.connection.as_mut() {
            Pin::new(connection).graceful_shutdown();
        }
    }
}

impl<S, B> Future for Http1<S>
where
    S: HttpService<Incoming, ResBody = B> + Unpin,
    S::Future: Unpin,
    S::Error: Into<BoxError>,
    B: Body + 'static,
    B::Error: Into<BoxError>,
{
    type Output = hyper::Result<Parts<TokioIo<TimedIo>, S>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let connection = self
            .connection
            .as_mut()
            .expect("an ended connection is not polled again");
        ready!(connection.poll_without_shutdown(cx))?;
        let connection = self.connection.take().expect("present until ended");
        Poll::Ready(Ok(connection.into_parts()))
    }
}

/// Waits, holding only the socket, until the client sends its next bytes
/// (`true`: serve them), or the idle bound passes or the process drains
/// (`false`: close).
pub async fn wait_parked(
    stream: &LingeringStream,
    state: &ConnState,
    limits: &ClientTimeouts,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    if *stop.borrow() {
        return false;
    }
    let parked = metrics::gauge!(m::PARKED_CONNECTIONS);
    parked.increment(1.0);
    let resume = tokio::select! {
        readable = stream.get_ref().readable() => readable.is_ok(),
        () = tokio::time::sleep_until(state.parked_deadline(limits)) => {
            metrics::counter!(m::CLIENT_TIMEOUTS, "kind" => "idle").increment(1);
            false
        }
        _ = stop.wait_for(|stopping| *stopping) => false,
    };
    parked.decrement(1.0);
    resume
}
