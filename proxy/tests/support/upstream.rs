//! `start_upstream()`: the app stand-in. An HTTP/1.1 server on
//! `127.0.0.1:0` that records every request it receives (method, target,
//! every header line including duplicates, body length and SHA-256) and
//! answers 200. It can be told to wait before answering, to answer with a
//! large body, or to add response headers.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::{AbortHandle, JoinHandle};

/// The body the upstream answers with by default.
pub const UPSTREAM_BODY: &str = "hello from upstream";

/// One request as the upstream saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// Path and query, as received.
    pub target: String,
    pub version: http::Version,
    /// Every header line, names lower-cased, in order, duplicates kept.
    /// Values are read as UTF-8 with replacement; see `raw_headers`.
    pub headers: Vec<(String, String)>,
    /// The same lines with their values exactly as received.
    pub raw_headers: Vec<(String, Vec<u8>)>,
    pub body_len: usize,
    pub body_sha256: String,
}

impl Seen {
    /// Values of every header line with this (lower-case) name.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The value of a header that must appear at most once.
    pub fn header(&self, name: &str) -> Option<&str> {
        let values = self.all(name);
        assert!(
            values.len() <= 1,
            "upstream got {} `{name}` headers: {values:?}",
            values.len()
        );
        values.first().copied()
    }

    pub fn has(&self, name: &str) -> bool {
        !self.all(name).is_empty()
    }

    /// Every header that names an identity once lower-cased with `_` read
    /// as `-` (`X-User-Id`, `x_user_id`, ...), as (name, value).
    pub fn identity_headers(&self) -> Vec<(String, String)> {
        self.headers
            .iter()
            .filter(|(n, _)| n.to_ascii_lowercase().replace('_', "-") == "x-user-id")
            .cloned()
            .collect()
    }

    /// All `Cookie` header values joined with "; ".
    pub fn cookies(&self) -> String {
        self.all("cookie").join("; ")
    }

    /// Every value of this (lower-case) header, byte for byte.
    pub fn raw(&self, name: &str) -> Vec<Vec<u8>> {
        self.raw_headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

#[derive(Debug, Default)]
struct State {
    seen: Mutex<Vec<Seen>>,
    /// Requests whose head arrived (counted before the body is read).
    arrived: AtomicUsize,
    delay: Mutex<Duration>,
    response_len: Mutex<Option<usize>>,
    response_headers: Mutex<Vec<(String, String)>>,
    connections: Mutex<Vec<AbortHandle>>,
}

/// A running upstream. Dropping it stops it.
#[derive(Debug)]
pub struct Upstream {
    addr: SocketAddr,
    state: Arc<State>,
    accept: Mutex<Option<JoinHandle<()>>>,
}

/// Starts an upstream on a fresh port.
pub async fn start_upstream() -> Upstream {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    let state = Arc::new(State::default());
    let accept = tokio::spawn(accept_loop(listener, state.clone()));
    Upstream {
        addr,
        state,
        accept: Mutex::new(Some(accept)),
    }
}

impl Upstream {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `PROXY_UPSTREAM`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request received so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().expect("seen lock").clone()
    }

    /// How many requests were received completely.
    pub fn count(&self) -> usize {
        self.state.seen.lock().expect("seen lock").len()
    }

    /// How many request heads arrived (also those still waiting to answer).
    pub fn arrived(&self) -> usize {
        self.state.arrived.load(Ordering::SeqCst)
    }

    /// The last request received; fails the test when there is none.
    pub fn last(&self) -> Seen {
        self.seen()
            .last()
            .cloned()
            .expect("the upstream received a request")
    }

    /// Waits this long before answering each request from now on.
    pub fn set_delay(&self, delay: Duration) {
        *self.state.delay.lock().expect("delay lock") = delay;
    }

    /// Answers with `len` bytes of [`pattern`] instead of the short body.
    pub fn set_response_len(&self, len: usize) {
        *self.state.response_len.lock().expect("len lock") = Some(len);
    }

    /// Adds these header lines to every response.
    pub fn set_response_headers(&self, headers: &[(&str, &str)]) {
        *self.state.response_headers.lock().expect("headers lock") = headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect();
    }

    /// Closes the listener and every connection: connects are refused.
    pub async fn stop(&self) {
        let accept = self.accept.lock().expect("accept lock").take();
        if let Some(accept) = accept {
            accept.abort();
            let _ = accept.await;
        }
        for connection in self.state.connections.lock().expect("conn lock").drain(..) {
            connection.abort();
        }
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        if let Some(accept) = self.accept.lock().expect("accept lock").take() {
            accept.abort();
        }
        for connection in self.state.connections.lock().expect("conn lock").drain(..) {
            connection.abort();
        }
    }
}

/// `len` bytes of a fixed pattern, for large bodies that are cheap to check.
pub fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

async fn accept_loop(listener: TcpListener, state: Arc<State>) {
    loop {
        let Ok((tcp, _peer)) = listener.accept().await else {
            continue;
        };
        let handler_state = state.clone();
        let connection = tokio::spawn(async move {
            let service = service_fn(move |request| answer(handler_state.clone(), request));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), service)
                .await;
        });
        let mut connections = state.connections.lock().expect("conn lock");
        connections.retain(|c| !c.is_finished());
        connections.push(connection.abort_handle());
    }
}

async fn answer(
    state: Arc<State>,
    request: Request<Incoming>,
) -> Result<Response<BoxBody<Bytes, Infallible>>, Infallible> {
    state.arrived.fetch_add(1, Ordering::SeqCst);
    let (parts, mut body) = request.into_parts();
    let mut digest = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    let mut body_len = 0;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { break };
        if let Some(data) = frame.data_ref() {
            body_len += data.len();
            digest.update(data);
        }
    }
    let headers = parts
        .headers
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let raw_headers = parts
        .headers
        .iter()
        .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
        .collect();
    let target = parts
        .uri
        .path_and_query()
        .map(|pq| pq.as_str().to_owned())
        .unwrap_or_else(|| parts.uri.to_string());
    state.seen.lock().expect("seen lock").push(Seen {
        method: parts.method.to_string(),
        target,
        version: parts.version,
        headers,
        raw_headers,
        body_len,
        body_sha256: super::hex(digest.finish().as_ref()),
    });

    let delay = *state.delay.lock().expect("delay lock");
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let body = match *state.response_len.lock().expect("len lock") {
        Some(len) => Bytes::from(pattern(len)),
        None => Bytes::from_static(UPSTREAM_BODY.as_bytes()),
    };
    let mut response = Response::builder()
        .status(200)
        .header("content-type", "text/plain");
    for (name, value) in state.response_headers.lock().expect("headers lock").iter() {
        response = response.header(name, value);
    }
    Ok(response
        .body(Full::new(body).boxed())
        .expect("response builds"))
}
