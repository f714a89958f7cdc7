//! The HTTP/1.1 fast path: the common request read and answered without
//! hyper's server.
//!
//! Issue 11 measured the proxy at 0.72× nginx's throughput with one valid
//! token, and a forwarder that runs the same pipeline steps without hyper
//! (`examples/floor.rs`) at 1.02×: the difference is hyper's dispatcher,
//! its body types and the re-encoding of heads, not the checks. So a
//! request the proxy can take whole and without doubt is parsed here
//! (httparse, as hyper parses it), handled by the same [`Pipeline`] as
//! every other request, and its response written here. Everything else is
//! hyper's, from the first byte of that request on, until the connection
//! next parks ([`crate::park`]).
//!
//! What the fast path takes:
//! - a head complete in the bytes already read (a head that arrives in
//!   pieces goes to hyper, and with it the header read bound);
//! - `HTTP/1.1`, `GET` or `HEAD`;
//! - no `Content-Length`, `Transfer-Encoding`, `Expect` or `Upgrade`
//!   field. Without the first two a request has no body (RFC 9112 §6.3),
//!   so there is no framing for the proxy and the app to read differently:
//!   request smuggling (RFC 9112 §11.2) has nothing to work with;
//! - at most [`MAX_HEADERS`] fields, each name and value valid, and a
//!   target `http::Uri` reads. A head httparse refuses goes to hyper, which
//!   answers it as it always did.
//!
//! Responses are framed as hyper frames them (RFC 9112 §6): no body for
//! `HEAD`, 1xx, 204 and 304; the `Content-Length` the response carries, or
//! one from its body's exact size; otherwise chunked. A body that runs
//! past or stops short of its length closes the connection. A `Date` is
//! added when the response has none (RFC 9110 §6.6.1), and `Connection:
//! close` when the client asked for it or the proxy is draining.

use std::cell::RefCell;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{Buf, Bytes, BytesMut};
use http::header::{
    CONNECTION, CONTENT_LENGTH, DATE, EXPECT, HeaderName, HeaderValue, TRANSFER_ENCODING, UPGRADE,
};
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri, Version};
use http_body_util::BodyExt;
use hyper::body::Body as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;
use tokio::time::Sleep;

use crate::conn::{ClientTimeouts, ConnState, TimedIo};
use crate::error::Body;
use crate::headers::{content_length, has_token};
use crate::park::wait_parked;
use crate::pipeline::{NoBody, Peer, Pipeline};

/// What one read asks for. A request head is well under this; one that is
/// not complete in it goes to hyper, which takes up to 64 KiB.
const READ_SIZE: usize = 8 * 1024;
/// Fields in a request head, as hyper allows (its `MAX_HEADERS`); more go
/// to hyper, which refuses them.
pub const MAX_HEADERS: usize = 100;
/// Response body data above this is written as it is, not copied behind
/// the head.
const COPY_LIMIT: usize = 16 * 1024;

/// How the fast path left the connection.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Closed: by the client, after `Connection: close`, at a bound, on an
    /// error, or because the proxy is draining.
    Closed,
    /// A request the fast path does not take: its bytes are back in the
    /// [`TimedIo`] for hyper to read.
    Hyper,
}

/// Serves requests on `io` for as long as they are the fast path's.
pub async fn serve(
    io: &mut TimedIo,
    pipeline: &Pipeline,
    peer: &Peer,
    state: &Arc<ConnState>,
    limits: &ClientTimeouts,
    stop: &mut watch::Receiver<bool>,
) -> Outcome {
    // The read buffer is kept from one request to the next: the head is
    // copied out of it, so `reserve` takes back the same 8 KiB instead of
    // allocating them again (an allocation and a free a request, about 800
    // instructions; callgrind, issue 11). A connection waiting for its next
    // request held that buffer before as well; a parked one holds none.
    let mut pending = BytesMut::new();
    // One park timer for the fast path's life, moved on with `reset`
    // rather than made for each read that waits. A timer registered while
    // the runtime's timer wheel holds none earlier (under load, often: the
    // previous ones were cancelled when their reads completed) makes tokio
    // write to its eventfd to wake its own thread: one write a request at
    // one connection, 0.34-0.74 at fifty (perf stat, issue 11; the test
    // `waiting_for_the_next_request_makes_no_wake_up_writes`). Moved later,
    // a timer that is still registered only has its deadline changed,
    // without the wheel's lock or a wake-up; the wheel finds the later
    // deadline when the old one comes and files it again.
    let mut park_timer: Option<Pin<Box<Sleep>>> = None;
    loop {
        if pending.is_empty()
            && !read_more(io, &mut pending, state, limits, stop, &mut park_timer).await
        {
            return Outcome::Closed;
        }
        let Some((request, client_close)) = parse_head(&mut pending) else {
            io.unread(pending.freeze());
            return Outcome::Hyper;
        };
        let close = client_close || *stop.borrow();
        let guard = state.request_started();
        // Boxed, as the hyper path boxes its service future: the pipeline's
        // future is about 3 KiB, and unboxed it would be part of every
        // connection's task for the connection's whole life.
        let keep_alive = Box::pin(exchange(io, pipeline, peer, request, close)).await;
        drop(guard);
        if !keep_alive {
            return Outcome::Closed;
        }
    }
}

/// Reads the next bytes from the client into `pending`, waiting as a
/// keep-alive connection waits: parked after [`crate::park::PARK_AFTER`],
/// closed at the idle bound or when the proxy drains (`false`).
async fn read_more(
    io: &mut TimedIo,
    pending: &mut BytesMut,
    state: &ConnState,
    limits: &ClientTimeouts,
    stop: &mut watch::Receiver<bool>,
    park_timer: &mut Option<Pin<Box<Sleep>>>,
) -> bool {
    enum Waited {
        Read(std::io::Result<usize>),
        Park,
        Stop,
    }
    loop {
        if *stop.borrow() {
            return false;
        }
        pending.reserve(READ_SIZE);
        let waited = {
            let mut read = std::pin::pin!(io.read_buf(pending));
            // Under load the next request is usually there already: no
            // timer is set up for a read that does not wait.
            let ready = std::future::poll_fn(|cx| Poll::Ready(read.as_mut().poll(cx))).await;
            match ready {
                Poll::Ready(result) => Waited::Read(result),
                Poll::Pending => {
                    let deadline = state.park_deadline(limits);
                    let timer = match park_timer {
                        Some(timer) => {
                            timer.as_mut().reset(deadline);
                            timer
                        }
                        None => park_timer.insert(Box::pin(tokio::time::sleep_until(deadline))),
                    };
                    tokio::select! {
                        biased;
                        result = read.as_mut() => Waited::Read(result),
                        () = timer.as_mut() => Waited::Park,
                        _ = stop.wait_for(|stopping| *stopping) => Waited::Stop,
                    }
                }
            }
        };
        match waited {
            Waited::Read(Ok(read)) => return read > 0,
            Waited::Read(Err(_)) | Waited::Stop => return false,
            Waited::Park => {
                *pending = BytesMut::new();
                if !wait_parked(io.stream(), state, limits, stop).await {
                    return false;
                }
                state.unpark();
            }
        }
    }
}

/// The request whose head starts `pending`, taken out of it, and whether
/// the client asked to close after it (`Connection: close`); `None` when
/// the head is not the fast path's (incomplete, refused by httparse, or
/// one that may have a body), with `pending` untouched.
fn parse_head(pending: &mut BytesMut) -> Option<(Request<NoBody>, bool)> {
    // Left uninitialised for httparse to fill, as hyper does: filling the
    // hundred slots first was 400 stores a request (callgrind, issue 11).
    let mut slots = [const { MaybeUninit::uninit() }; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut []);
    let Ok(httparse::Status::Complete(len)) = parsed.parse_with_uninit_headers(pending, &mut slots)
    else {
        return None;
    };
    let method = match parsed.method? {
        "GET" => Method::GET,
        "HEAD" => Method::HEAD,
        _ => return None,
    };
    if parsed.version != Some(1) {
        return None;
    }
    // One copy of the head, which the header values and the target then
    // share, as hyper's do its read buffer.
    let head = Bytes::copy_from_slice(&pending[..len]);
    let base = pending.as_ptr() as usize;
    let share = |part: &[u8]| {
        let start = part.as_ptr() as usize - base;
        head.slice(start..start + part.len())
    };
    let mut close = false;
    // Room for the three fields the pipeline adds (`X-User-Id`,
    // `X-Forwarded-For`, `X-Request-Id`): growing the map once they come
    // cost 1,300 instructions a request (callgrind).
    let mut headers = HeaderMap::with_capacity(parsed.headers.len() + 3);
    for field in parsed.headers.iter() {
        let name = HeaderName::from_bytes(field.name.as_bytes()).ok()?;
        if name == CONTENT_LENGTH || name == TRANSFER_ENCODING || name == EXPECT || name == UPGRADE
        {
            return None;
        }
        if name == CONNECTION && has_token(field.value, "close") {
            close = true;
        }
        headers.append(
            name,
            HeaderValue::from_maybe_shared(share(field.value)).ok()?,
        );
    }
    let uri = Uri::from_maybe_shared(share(parsed.path?.as_bytes())).ok()?;
    pending.advance(len);
    let mut request = Request::new(NoBody);
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.version_mut() = Version::HTTP_11;
    *request.headers_mut() = headers;
    Some((request, close))
}

/// Runs the request through the pipeline and writes the response;
/// `true` when the connection may serve another request.
async fn exchange(
    io: &mut TimedIo,
    pipeline: &Pipeline,
    peer: &Peer,
    request: Request<NoBody>,
    close: bool,
) -> bool {
    let head_only = request.method() == Method::HEAD;
    let response = pipeline.handle(peer, request).await;
    write_response(io, response, head_only, close).await
}

/// How a response body is delimited on the client's connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// No body may follow the head.
    None,
    /// Exactly this many bytes.
    Length(u64),
    Chunked,
}

async fn write_response(
    io: &mut TimedIo,
    response: Response<Body>,
    head_only: bool,
    mut close: bool,
) -> bool {
    let (parts, mut body) = response.into_parts();
    let mut out = Vec::with_capacity(512);
    let status = parts.status;
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    match parts.extensions.get::<hyper::ext::ReasonPhrase>() {
        Some(reason) => out.extend_from_slice(reason.as_bytes()),
        None => out.extend_from_slice(status.canonical_reason().unwrap_or("<none>").as_bytes()),
    }
    out.extend_from_slice(b"\r\n");

    // hyper's rules (`proto::h1::role::Server`), so that a response reads
    // the same whichever path served it.
    let no_length = status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let bodiless = head_only || no_length;
    // Written after the response's own fields, where hyper writes it.
    let mut framing_field: Option<(&[u8], String)> = None;
    let length = match parts.headers.get(CONTENT_LENGTH) {
        Some(value) => match content_length(value.as_bytes()) {
            Some(length) => Some(length),
            // Only a response the proxy made could get here (hyper's
            // client refuses such a response from the app): nothing can
            // be framed after it.
            None => return false,
        },
        None => match body.size_hint().exact() {
            Some(0) if no_length || head_only => Some(0),
            Some(length) if !no_length => {
                framing_field = Some((b"content-length", length.to_string()));
                Some(length)
            }
            Some(length) => Some(length),
            None if bodiless => None,
            None => {
                framing_field = Some((b"transfer-encoding", "chunked".to_owned()));
                None
            }
        },
    };
    let framing = match length {
        _ if bodiless => Framing::None,
        Some(length) => Framing::Length(length),
        None => Framing::Chunked,
    };
    let mut has_date = false;
    for (name, value) in &parts.headers {
        has_date |= name == DATE;
        if name == CONNECTION {
            close |= has_token(value.as_bytes(), "close");
            continue;
        }
        if name == TRANSFER_ENCODING {
            // Hop-by-hop; the framing above is this connection's.
            continue;
        }
        field(&mut out, name.as_str().as_bytes(), value.as_bytes());
    }
    if let Some((name, value)) = framing_field {
        field(&mut out, name, value.as_bytes());
    }
    if !has_date {
        DATE_CACHE.with(|cache| field(&mut out, b"date", cache.borrow_mut().now().as_bytes()));
    }
    if close {
        field(&mut out, b"connection", b"close");
    }
    out.extend_from_slice(b"\r\n");

    let mut remaining = match framing {
        Framing::None => return io.write_all(&out).await.is_ok() && !close,
        Framing::Length(length) => length,
        Framing::Chunked => 0,
    };
    loop {
        let data = match body.frame().await {
            None => break,
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) if !data.is_empty() => data,
                // Trailers are dropped, as hyper drops them for a client
                // that did not ask for them (`TE: trailers`).
                _ => continue,
            },
            Some(Err(err)) => {
                tracing::debug!(error = %err, "response body failed; closing the client connection");
                let _ = io.write_all(&out).await;
                return false;
            }
        };
        if framing == Framing::Chunked {
            out.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
        } else if data.len() as u64 > remaining {
            // More than the length said: what follows would be read as
            // the next response.
            let _ = io.write_all(&out).await;
            return false;
        } else {
            remaining -= data.len() as u64;
        }
        if data.len() > COPY_LIMIT {
            if io.write_all(&out).await.is_err() || io.write_all(&data).await.is_err() {
                return false;
            }
            out.clear();
        } else {
            out.extend_from_slice(&data);
        }
        if framing == Framing::Chunked {
            out.extend_from_slice(b"\r\n");
        }
        // Written at once unless the body's end is known to be here: a
        // response that streams must not wait behind the next frame.
        if !body.is_end_stream() {
            if io.write_all(&out).await.is_err() {
                return false;
            }
            out.clear();
        }
    }
    if framing == Framing::Chunked {
        out.extend_from_slice(b"0\r\n\r\n");
    }
    if io.write_all(&out).await.is_err() {
        return false;
    }
    // A body that stopped short leaves the client waiting for the rest:
    // closing tells it the response is cut.
    remaining == 0 && !close
}

fn field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

thread_local! {
    static DATE_CACHE: RefCell<DateCache> = RefCell::new(DateCache::default());
}

/// The `Date` value, formatted once a second (as hyper caches its own).
#[derive(Default)]
struct DateCache {
    second: u64,
    value: String,
}

impl DateCache {
    fn now(&mut self) -> &str {
        let now = SystemTime::now();
        let second = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        if second != self.second || self.value.is_empty() {
            self.second = second;
            self.value = httpdate::fmt_http_date(now);
        }
        &self.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &[u8]) -> (Option<(Request<NoBody>, bool)>, BytesMut) {
        let mut pending = BytesMut::from(raw);
        let parsed = parse_head(&mut pending);
        (parsed, pending)
    }

    #[test]
    fn a_complete_get_is_taken_and_the_rest_stays_pending() {
        let (parsed, rest) =
            parse(b"GET /a?b=1 HTTP/1.1\r\nHost: x\r\nX-A: 1\r\nX-A: 2\r\n\r\nGET /next");
        let (request, close) = parsed.expect("taken");
        assert!(!close);
        assert_eq!(request.method(), Method::GET);
        assert_eq!(request.uri(), "/a?b=1");
        assert_eq!(request.headers().get_all("x-a").iter().count(), 2);
        assert_eq!(&rest[..], b"GET /next");
    }

    #[test]
    fn heads_that_may_have_a_body_or_are_unusual_go_to_hyper_untouched() {
        let cases: &[&[u8]] = &[
            b"POST / HTTP/1.1\r\nHost: x\r\n\r\n",
            b"DELETE / HTTP/1.1\r\nHost: x\r\n\r\n",
            b"OPTIONS / HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
            b"GET / HTTP/1.1\r\ncontent-length: 5\r\n\r\nhello",
            b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            b"GET / HTTP/1.1\r\nTRANSFER-ENCODING: identity\r\n\r\n",
            b"GET / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n",
            b"GET / HTTP/1.1\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n",
            b"GET / HTTP/1.0\r\nHost: x\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
            b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
            b"get / HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET /a b HTTP/1.1\r\n\r\n",
        ];
        for raw in cases {
            let (parsed, rest) = parse(raw);
            assert!(parsed.is_none(), "{}", String::from_utf8_lossy(raw));
            assert_eq!(&rest[..], *raw, "left as it was");
        }
        let many: String = (0..=MAX_HEADERS).map(|i| format!("x-{i}: v\r\n")).collect();
        let raw = format!("GET / HTTP/1.1\r\n{many}\r\n");
        assert!(parse(raw.as_bytes()).0.is_none(), "too many fields");
    }

    #[test]
    fn connection_close_is_found_among_other_options() {
        for value in ["close", "Close", "keep-alive, close", " foo ,CLOSE"] {
            let raw = format!("GET / HTTP/1.1\r\nConnection: {value}\r\n\r\n");
            let (parsed, _) = parse(raw.as_bytes());
            assert!(parsed.expect("taken").1, "{value}");
        }
        let (parsed, _) = parse(b"GET / HTTP/1.1\r\nConnection: closed, keep-alive\r\n\r\n");
        assert!(!parsed.expect("taken").1);
    }
}
