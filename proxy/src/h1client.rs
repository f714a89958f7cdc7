//! Body-less requests to the app, written and read without hyper's client.
//!
//! Issue 11's profile put hyper's client connection (its dispatcher, the
//! channel between the request and the connection's task, the encoding of
//! the head) at about 13,700 instructions of the proxy's 44,300 per
//! request. A `GET` or `HEAD` with no body has nothing to stream and no
//! framing to choose on the way out, so the proxy writes its head itself
//! and reads the response here, in the request's own task. Requests with a
//! body (and any other method) keep hyper's client ([`crate::pool`]).
//!
//! The response is read as hyper's client reads it (RFC 9112 §6.3), with
//! hyper's parser (httparse):
//! - 1xx responses are skipped; a `101` is an error, since no request here
//!   asks for an upgrade;
//! - no body after a `HEAD`, a `204` or a `304`;
//! - `Transfer-Encoding` ending in `chunked`: chunked (trailers are passed
//!   on as a trailers frame); any other `Transfer-Encoding`: to the close;
//!   one on an HTTP/1.0 response is an error;
//! - otherwise `Content-Length` (several fields or a list must agree, RFC
//!   9110 §8.6); otherwise to the close.
//!
//! One rule is stricter than hyper's: after a response with both
//! `Transfer-Encoding` and `Content-Length` (which RFC 9112 §6.3, rule 3,
//! says "ought to be handled as an error") the connection is not used
//! again. The `Content-Length` itself is removed in the pipeline, for
//! either client.
//!
//! A connection is used again only after a response whose end was read
//! exactly: HTTP/1.1 without `Connection: close` (HTTP/1.0 with
//! `keep-alive`), a framed body read to its end, and no byte after it.

use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use http::header::{CONNECTION, CONTENT_LENGTH, HeaderName, HeaderValue, TRANSFER_ENCODING};
use http::{HeaderMap, Method, Request, Response, StatusCode, Version};
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::forward::RequestBody;
use crate::headers::{content_length, has_token};

/// A response head longer than this is refused: hyper's client's limit
/// (its read buffer, 8 KiB and 100 × 4 KiB), so that a head reads the same
/// whichever client reads it.
pub const MAX_HEAD: usize = 8 * 1024 + 100 * 4 * 1024;
/// A chunk-size line with its extensions, or the trailer section, longer
/// than this is refused (hyper's limit for trailers).
const MAX_LINE: usize = 16 * 1024;
/// Fields in a response head or its trailers, as hyper's client allows.
const MAX_FIELDS: usize = 100;
/// What one read asks for.
const READ_SIZE: usize = 8 * 1024;

/// Why a response could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ResponseError {
    /// The connection ended (or broke) before any byte of a response: on a
    /// kept-alive connection, the app closed it as the request went out.
    #[error("the connection to the app closed before a response")]
    NoResponse(#[source] Option<std::io::Error>),
    /// Reading or writing failed once the response had started.
    #[error("the connection to the app broke: {0}")]
    Io(#[from] std::io::Error),
    /// What the app sent cannot be read as an HTTP/1.1 response.
    #[error("the app's response cannot be read: {0}")]
    Malformed(&'static str),
}

/// An open connection to the app, with what was read past the last
/// response (nothing, on a connection kept for reuse).
#[derive(Debug)]
pub struct RawConn {
    stream: TcpStream,
    buf: BytesMut,
}

impl RawConn {
    pub fn new(stream: TcpStream) -> Self {
        RawConn {
            stream,
            buf: BytesMut::new(),
        }
    }
}

/// Whether `request` goes this way: `GET` or `HEAD` with no body and no
/// field that frames one.
pub fn takes(request: &Request<RequestBody>) -> bool {
    matches!(*request.method(), Method::GET | Method::HEAD)
        && request.body().is_end_stream()
        && !request.headers().contains_key(CONTENT_LENGTH)
        && !request.headers().contains_key(TRANSFER_ENCODING)
}

/// The request head as HTTP/1.1 bytes, as hyper's client writes it: the
/// target in origin-form as given, the fields in the map's order.
pub fn encode_head(request: &Request<RequestBody>) -> Vec<u8> {
    let target = request
        .uri()
        .path_and_query()
        .map_or("/", http::uri::PathAndQuery::as_str);
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(request.method().as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in request.headers() {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

impl RawConn {
    /// Whether a kept-alive connection is still quiet: an app that closed
    /// it while it was idle, or wrote to it unasked (a `408` at its idle
    /// timeout), has made it unusable, and a request written on it would
    /// take that `408` for its response. hyper's client watches idle
    /// connections for the same reason. Readiness is tokio's record of
    /// what epoll reported, so this makes no system call unless the
    /// socket may have something to read.
    pub fn is_quiet(&mut self) -> bool {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        match self.stream.poll_read_ready(&mut cx) {
            Poll::Pending => true,
            // Often only left over from the last response's read, which
            // stopped before the socket said it had no more.
            Poll::Ready(Ok(())) => matches!(
                self.stream.try_read(&mut [0u8; 1]),
                Err(err) if err.kind() == std::io::ErrorKind::WouldBlock
            ),
            Poll::Ready(Err(_)) => false,
        }
    }
}

/// Writes `head` on `conn` and reads the response head. The body reads
/// from the connection as it is polled, and gives it back for reuse
/// ([`RawBody::take_reusable`]) once read to its end.
pub async fn exchange(
    mut conn: RawConn,
    head: &[u8],
    head_only: bool,
) -> Result<Response<RawBody>, ResponseError> {
    if let Err(err) = conn.stream.write_all(head).await {
        return Err(ResponseError::NoResponse(Some(err)));
    }
    let mut received = false;
    loop {
        // Nothing is there yet right after the write: no parse of nothing.
        if !conn.buf.is_empty()
            && let Some(parsed) = parse_head(&mut conn.buf, head_only)?
        {
            match parsed {
                Parsed::Informational => {
                    received = true;
                    continue;
                }
                Parsed::Final(response, framing, keep_alive) => {
                    let body = RawBody::new(conn, framing, keep_alive);
                    return Ok(response.map(|()| body));
                }
            }
        }
        if conn.buf.len() > MAX_HEAD {
            return Err(ResponseError::Malformed("response head too long"));
        }
        conn.buf.reserve(READ_SIZE);
        match conn.stream.read_buf(&mut conn.buf).await {
            Ok(0) if !received && conn.buf.is_empty() => {
                return Err(ResponseError::NoResponse(None));
            }
            Ok(0) => return Err(ResponseError::Malformed("the connection ended in the head")),
            Ok(_) => received = true,
            Err(err) if !received && conn.buf.is_empty() => {
                return Err(ResponseError::NoResponse(Some(err)));
            }
            Err(err) => return Err(ResponseError::Io(err)),
        }
    }
}

/// How the response body is delimited on the app's connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Length(u64),
    Chunked,
    /// To the end of the connection.
    Close,
}

enum Parsed {
    Informational,
    /// The head, how its body is framed, and whether the connection may
    /// be used again after it.
    Final(Response<()>, Framing, bool),
}

/// The response head at the start of `buf`, taken out of it; `None` when
/// it is not complete yet.
fn parse_head(buf: &mut BytesMut, head_only: bool) -> Result<Option<Parsed>, ResponseError> {
    // Uninitialised, as in the fast path's request parse (`fastpath.rs`).
    let mut slots = [const { MaybeUninit::uninit() }; MAX_FIELDS];
    let mut parsed = httparse::Response::new(&mut []);
    let len = match httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut parsed,
        buf,
        &mut slots,
    ) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(ResponseError::Malformed("more than 100 fields"));
        }
        Err(_) => return Err(ResponseError::Malformed("not an HTTP/1.x response head")),
    };
    let code = parsed.code.unwrap_or_default();
    let status =
        StatusCode::from_u16(code).map_err(|_| ResponseError::Malformed("bad status code"))?;
    if code == 101 {
        return Err(ResponseError::Malformed("101 to a request without Upgrade"));
    }
    if status.is_informational() {
        buf.advance(len);
        return Ok(Some(Parsed::Informational));
    }
    let version = if parsed.version == Some(1) {
        Version::HTTP_11
    } else {
        Version::HTTP_10
    };
    // One copy of the head, which the field values share, as hyper's share
    // its read buffer.
    let head = Bytes::copy_from_slice(&buf[..len]);
    let base = buf.as_ptr() as usize;
    let share = |part: &[u8]| {
        let start = part.as_ptr() as usize - base;
        head.slice(start..start + part.len())
    };
    let mut keep_alive = version == Version::HTTP_11;
    let mut saw_close = false;
    // The framing fields, noted as they go by rather than looked up in the
    // map afterwards (three lookups, 580 instructions a response;
    // callgrind, issue 11). `length` is the one length every
    // `Content-Length` field states, or why there is none; it counts only
    // if the framing comes to it.
    let mut transfer_encoding = false;
    let mut length: Option<Result<u64, &'static str>> = None;
    let mut headers = HeaderMap::with_capacity(parsed.headers.len());
    for field in parsed.headers.iter() {
        let name = HeaderName::from_bytes(field.name.as_bytes())
            .map_err(|_| ResponseError::Malformed("bad field name"))?;
        if name == TRANSFER_ENCODING {
            transfer_encoding = true;
        } else if name == CONTENT_LENGTH {
            length = Some(match (length, content_length(field.value)) {
                (Some(Err(first)), _) => Err(first),
                (_, None) => Err("bad Content-Length"),
                (Some(Ok(seen)), Some(stated)) if seen != stated => {
                    Err("Content-Length fields disagree")
                }
                (_, Some(stated)) => Ok(stated),
            });
        } else if name == CONNECTION {
            // Once any `Connection` line asks to close, a later
            // `keep-alive` does not undo it.
            if saw_close || has_token(field.value, "close") {
                saw_close = true;
                keep_alive = false;
            } else if !keep_alive {
                keep_alive = has_token(field.value, "keep-alive");
            }
        }
        let value = HeaderValue::from_maybe_shared(share(field.value))
            .map_err(|_| ResponseError::Malformed("bad field value"))?;
        headers.append(name, value);
    }
    let reason = parsed.reason.unwrap_or_default();
    // Copied, not shared: httparse hands back a `""` of its own, not a
    // slice of the head, for a status line without a reason or with one
    // it cannot read as text.
    let reason = (Some(reason) != status.canonical_reason())
        .then(|| hyper::ext::ReasonPhrase::try_from(reason.as_bytes()));
    buf.advance(len);

    let framing =
        if head_only || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
            Framing::Length(0)
        } else if transfer_encoding {
            if version == Version::HTTP_10 {
                return Err(ResponseError::Malformed("Transfer-Encoding on HTTP/1.0"));
            }
            // Both framings: the pipeline removes the `Content-Length`,
            // for either client; the connection gets no other request.
            if length.is_some() {
                keep_alive = false;
            }
            if final_coding_is_chunked(&headers) {
                Framing::Chunked
            } else {
                Framing::Close
            }
        } else if let Some(length) = length {
            Framing::Length(length.map_err(ResponseError::Malformed)?)
        } else {
            Framing::Close
        };
    if framing == Framing::Close {
        keep_alive = false;
    }

    let mut response = Response::new(());
    *response.status_mut() = status;
    *response.version_mut() = version;
    *response.headers_mut() = headers;
    if let Some(Ok(reason)) = reason {
        response.extensions_mut().insert(reason);
    }
    Ok(Some(Parsed::Final(response, framing, keep_alive)))
}

/// Whether a chunk-size line, as httparse took it, is one RFC 9112 §7.1
/// allows and hyper reads: at least one hex digit first, and no bare LF
/// before its CRLF. httparse reads `\r\n` alone as a last chunk of size 0
/// and lets an LF through inside an extension.
fn chunk_line_is_strict(line: &[u8]) -> bool {
    line.first().is_some_and(u8::is_ascii_hexdigit)
        && line.ends_with(b"\r\n")
        && !line[..line.len() - 2].contains(&b'\n')
}

/// Whether the last coding of the last `Transfer-Encoding` field is
/// `chunked` (RFC 9112 §6.3, rule 4).
fn final_coding_is_chunked(headers: &HeaderMap) -> bool {
    headers
        .get_all(TRANSFER_ENCODING)
        .iter()
        .next_back()
        .and_then(|value| value.as_bytes().rsplit(|byte| *byte == b',').next())
        .is_some_and(|coding| coding.trim_ascii().eq_ignore_ascii_case(b"chunked"))
}

/// Where a body stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decode {
    /// This many bytes still to come.
    Length(u64),
    /// A chunk-size line next.
    ChunkSize,
    /// This many bytes of the current chunk still to come.
    ChunkData(u64),
    /// The CRLF after a chunk's data.
    ChunkEnd,
    Trailers,
    Close,
    Done,
}

/// The app's response body, read from its connection as it is polled.
/// Errors are [`ResponseError`]s.
#[derive(Debug)]
pub struct RawBody {
    conn: Option<RawConn>,
    /// A body that came whole with the head, not yet handed on.
    whole: Option<Bytes>,
    decode: Decode,
    keep_alive: bool,
}

impl RawBody {
    fn new(mut conn: RawConn, framing: Framing, keep_alive: bool) -> Self {
        let mut whole = None;
        let decode = match framing {
            Framing::Length(0) => Decode::Done,
            // The usual small response: taken now, so that the connection
            // can go back to the pool before the body is written on.
            Framing::Length(length) if length <= conn.buf.len() as u64 => {
                whole = Some(conn.buf.split_to(length as usize).freeze());
                Decode::Done
            }
            Framing::Length(length) => Decode::Length(length),
            Framing::Chunked => Decode::ChunkSize,
            Framing::Close => Decode::Close,
        };
        RawBody {
            conn: Some(conn),
            whole,
            decode,
            keep_alive,
        }
    }

    /// The connection, once the body has been read to its end and the
    /// connection may carry another request; `None` before that, or when
    /// it may not.
    pub fn take_reusable(&mut self) -> Option<RawConn> {
        let reusable = self.decode == Decode::Done
            && self.keep_alive
            && self.conn.as_ref().is_some_and(|conn| conn.buf.is_empty());
        if reusable { self.conn.take() } else { None }
    }
}

/// The next step of a body from what has been read (`buf`, taken from as
/// it is decoded); `None` when more must be read first.
fn decode(state: &mut Decode, buf: &mut BytesMut) -> Result<Option<Frame<Bytes>>, ResponseError> {
    loop {
        match *state {
            Decode::Done => return Ok(None),
            Decode::Length(remaining) | Decode::ChunkData(remaining) => {
                if buf.is_empty() {
                    return Ok(None);
                }
                let take = usize::try_from(remaining)
                    .unwrap_or(usize::MAX)
                    .min(buf.len());
                let data = buf.split_to(take).freeze();
                let left = remaining - take as u64;
                *state = match (*state, left) {
                    (Decode::Length(_), 0) => Decode::Done,
                    (Decode::Length(_), left) => Decode::Length(left),
                    (_, 0) => Decode::ChunkEnd,
                    (_, left) => Decode::ChunkData(left),
                };
                return Ok(Some(Frame::data(data)));
            }
            Decode::Close => {
                if buf.is_empty() {
                    return Ok(None);
                }
                return Ok(Some(Frame::data(buf.split().freeze())));
            }
            Decode::ChunkSize => match httparse::parse_chunk_size(buf) {
                Ok(httparse::Status::Complete((len, size))) => {
                    if !chunk_line_is_strict(&buf[..len]) {
                        return Err(ResponseError::Malformed("bad chunk size line"));
                    }
                    buf.advance(len);
                    *state = if size == 0 {
                        Decode::Trailers
                    } else {
                        Decode::ChunkData(size)
                    };
                }
                Ok(httparse::Status::Partial) if buf.len() <= MAX_LINE => return Ok(None),
                _ => return Err(ResponseError::Malformed("bad chunk size line")),
            },
            Decode::ChunkEnd => {
                if buf.len() < 2 {
                    return Ok(None);
                }
                if &buf[..2] != b"\r\n" {
                    return Err(ResponseError::Malformed("no CRLF after chunk data"));
                }
                buf.advance(2);
                *state = Decode::ChunkSize;
            }
            Decode::Trailers => {
                let mut slots = [httparse::EMPTY_HEADER; MAX_FIELDS];
                let (len, fields) = match httparse::parse_headers(buf, &mut slots) {
                    Ok(httparse::Status::Complete(done)) => done,
                    Ok(httparse::Status::Partial) if buf.len() <= MAX_LINE => {
                        return Ok(None);
                    }
                    _ => return Err(ResponseError::Malformed("bad trailer section")),
                };
                let mut trailers = HeaderMap::new();
                for field in fields {
                    let (Ok(name), Ok(value)) = (
                        HeaderName::from_bytes(field.name.as_bytes()),
                        HeaderValue::from_bytes(field.value),
                    ) else {
                        return Err(ResponseError::Malformed("bad trailer field"));
                    };
                    trailers.append(name, value);
                }
                buf.advance(len);
                *state = Decode::Done;
                if !trailers.is_empty() {
                    return Ok(Some(Frame::trailers(trailers)));
                }
            }
        }
    }
}

impl HttpBody for RawBody {
    type Data = Bytes;
    type Error = ResponseError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ResponseError>>> {
        let this = &mut *self;
        if let Some(whole) = this.whole.take() {
            return Poll::Ready(Some(Ok(Frame::data(whole))));
        }
        loop {
            let Some(conn) = this.conn.as_mut() else {
                return Poll::Ready(None);
            };
            match decode(&mut this.decode, &mut conn.buf) {
                Err(err) => {
                    this.conn = None;
                    return Poll::Ready(Some(Err(err)));
                }
                Ok(Some(frame)) => return Poll::Ready(Some(Ok(frame))),
                Ok(None) if this.decode == Decode::Done => return Poll::Ready(None),
                Ok(None) => {}
            }
            match ready!(poll_fill(conn, cx)) {
                Ok(0) if this.decode == Decode::Close => {
                    this.decode = Decode::Done;
                    this.conn = None;
                    return Poll::Ready(None);
                }
                Ok(0) => {
                    this.conn = None;
                    return Poll::Ready(Some(Err(ResponseError::Malformed(
                        "the connection ended before the body did",
                    ))));
                }
                Ok(_) => {}
                Err(err) => {
                    this.conn = None;
                    return Poll::Ready(Some(Err(ResponseError::Io(err))));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.decode == Decode::Done && self.whole.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        match self.decode {
            Decode::Done => {
                SizeHint::with_exact(self.whole.as_ref().map_or(0, |whole| whole.len() as u64))
            }
            Decode::Length(remaining) => SizeHint::with_exact(remaining),
            _ => SizeHint::default(),
        }
    }
}

/// Reads what the socket has into `conn.buf`; `Ok(0)` at its end.
fn poll_fill(conn: &mut RawConn, cx: &mut Context<'_>) -> Poll<std::io::Result<usize>> {
    conn.buf.reserve(READ_SIZE);
    loop {
        ready!(conn.stream.poll_read_ready(cx))?;
        match conn.stream.try_read_buf(&mut conn.buf) {
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
            result => return Poll::Ready(result),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(raw: &[u8], head_only: bool) -> Result<Option<Parsed>, ResponseError> {
        parse_head(&mut BytesMut::from(raw), head_only)
    }

    fn final_head(raw: &[u8]) -> (Response<()>, Framing, bool) {
        match head(raw, false) {
            Ok(Some(Parsed::Final(response, framing, keep_alive))) => {
                (response, framing, keep_alive)
            }
            Ok(Some(Parsed::Informational)) => panic!("informational"),
            Ok(None) => panic!("partial"),
            Err(err) => panic!("{err}"),
        }
    }

    #[test]
    fn framing_follows_rfc_9112_section_6_3() {
        let cases: &[(&[u8], Framing, bool)] = &[
            (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", Framing::Length(5), true),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n", Framing::Length(5), true),
            (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", Framing::Chunked, true),
            (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", Framing::Chunked, true),
            (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", Framing::Close, false),
            (b"HTTP/1.1 200 OK\r\n\r\n", Framing::Close, false),
            (b"HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n", Framing::Length(0), true),
            (b"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n", Framing::Length(0), true),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\n", Framing::Length(5), false),
            (b"HTTP/1.1 200 OK\r\nConnection: close\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n", Framing::Length(1), false),
            (b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\n", Framing::Length(5), false),
            (b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 5\r\n\r\n", Framing::Length(5), true),
        ];
        for (raw, framing, keep_alive) in cases {
            let (_, got, reuse) = final_head(raw);
            assert_eq!(
                (got, reuse),
                (*framing, *keep_alive),
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
        // A HEAD response states the length of the body it does not carry.
        match head(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true) {
            Ok(Some(Parsed::Final(response, Framing::Length(0), true))) => {
                assert_eq!(response.headers()[CONTENT_LENGTH], "5");
            }
            _ => panic!("HEAD"),
        }
    }

    #[test]
    fn transfer_encoding_with_content_length_is_chunked_and_loses_the_connection() {
        let (_, framing, keep_alive) = final_head(
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        );
        assert_eq!(framing, Framing::Chunked);
        assert!(!keep_alive);
    }

    #[test]
    fn a_content_length_counts_only_where_the_framing_comes_to_it() {
        // Noted while the fields go by, refused only if the body is read by it.
        let cases: &[(&[u8], Framing, bool)] = &[
            (
                b"HTTP/1.1 204 No Content\r\nContent-Length: x\r\n\r\n",
                Framing::Length(0),
                true,
            ),
            (
                b"HTTP/1.1 304 Not Modified\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                Framing::Length(0),
                true,
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: x\r\nTransfer-Encoding: chunked\r\n\r\n",
                Framing::Chunked,
                false,
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\nX: y\r\ncontent-length: 7\r\n\r\n",
                Framing::Length(7),
                true,
            ),
        ];
        for (raw, framing, keep_alive) in cases {
            assert_eq!(
                final_head(raw).1,
                *framing,
                "{}",
                String::from_utf8_lossy(raw)
            );
            assert_eq!(
                final_head(raw).2,
                *keep_alive,
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
        for raw in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: x\r\nContent-Length: 5\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: x\r\nContent-Length: 5\r\n\r\n",
        ] {
            assert!(
                matches!(head(raw, false), Err(ResponseError::Malformed("bad Content-Length"))),
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    #[test]
    fn unreadable_heads_are_errors() {
        let cases: &[&[u8]] = &[
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n",
            b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n",
            b"HTTP/2 200 OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nX: a\r\n folded\r\n\r\n",
            b"HTTP/1.1 099 Low\r\n\r\n",
            b"SSH-2.0-OpenSSH\r\n\r\n",
        ];
        for raw in cases {
            assert!(
                matches!(head(raw, false), Err(ResponseError::Malformed(_))),
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    #[test]
    fn a_status_line_without_a_readable_reason_keeps_an_empty_one() {
        for raw in [
            &b"HTTP/1.1 200\r\ncontent-length: 2\r\n\r\nok"[..],
            b"HTTP/1.1 204 \r\n\r\n",
            b"HTTP/1.1 200 \xe9t\xe9\r\ncontent-length: 0\r\n\r\n",
        ] {
            let (response, _, _) = final_head(raw);
            let reason = response
                .extensions()
                .get::<hyper::ext::ReasonPhrase>()
                .expect("kept, as hyper keeps it");
            assert_eq!(reason.as_bytes(), b"", "{}", String::from_utf8_lossy(raw));
        }
    }

    #[test]
    fn informational_responses_are_skipped_and_reasons_kept_when_not_canonical() {
        let mut buf =
            BytesMut::from(&b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 Fine\r\nContent-Length: 0\r\n\r\n"[..]);
        assert!(matches!(
            parse_head(&mut buf, false),
            Ok(Some(Parsed::Informational))
        ));
        let Ok(Some(Parsed::Final(response, _, _))) = parse_head(&mut buf, false) else {
            panic!("final");
        };
        assert!(buf.is_empty());
        let reason = response
            .extensions()
            .get::<hyper::ext::ReasonPhrase>()
            .expect("kept");
        assert_eq!(reason.as_bytes(), b"Fine");
        let (canonical, _, _) = final_head(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        assert!(
            canonical
                .extensions()
                .get::<hyper::ext::ReasonPhrase>()
                .is_none()
        );
    }

    fn decode_all(
        framing: Framing,
        wire: &[u8],
        step: usize,
    ) -> Result<(Vec<u8>, HeaderMap, bool, usize), ResponseError> {
        let mut state = match framing {
            Framing::Length(length) => Decode::Length(length),
            Framing::Chunked => Decode::ChunkSize,
            Framing::Close => Decode::Close,
        };
        let mut buf = BytesMut::new();
        let mut data = Vec::new();
        let mut trailers = HeaderMap::new();
        for piece in wire.chunks(step) {
            buf.extend_from_slice(piece);
            while let Some(frame) = decode(&mut state, &mut buf)? {
                match frame.into_data() {
                    Ok(bytes) => data.extend_from_slice(&bytes),
                    Err(frame) => trailers = frame.into_trailers().expect("trailers"),
                }
            }
        }
        Ok((data, trailers, state == Decode::Done, buf.len()))
    }

    #[test]
    fn chunked_bodies_decode_whatever_the_read_boundaries() {
        let wire = b"5;ext=1\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n0\r\nX-Sum: 7\r\n\r\n";
        for step in [1, 2, 3, 7, wire.len()] {
            let (data, trailers, done, left) =
                decode_all(Framing::Chunked, wire, step).expect("decodes");
            assert_eq!(data, b"hello 0123456789", "step {step}");
            assert_eq!(trailers["x-sum"], "7");
            assert!(done);
            assert_eq!(left, 0);
        }
        let (_, _, done, left) =
            decode_all(Framing::Chunked, b"0\r\n\r\nHTTP/1.1", 100).expect("decodes");
        assert!(done);
        assert_eq!(left, 8, "bytes after the body stay unread");
        for bad in [
            &b"zz\r\n"[..],
            b"3\r\nabcXY",
            b"3\r\nabc\r\n0\r\nbad trailer\r\n\r\n",
            // No size at all: httparse reads these as the last chunk.
            b"5\r\nhello\r\n\r\n\r\n",
            b" \r\n\r\n",
            b";x\r\n\r\n",
            // A bare LF inside an extension, and as the line's end.
            b"5;a\nb\r\nhello\r\n0\r\n\r\n",
            b"5\nhello\r\n0\r\n\r\n",
        ] {
            assert!(
                decode_all(Framing::Chunked, bad, 100).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn a_length_body_ends_at_its_length() {
        let (data, _, done, left) =
            decode_all(Framing::Length(5), b"helloEXTRA", 3).expect("decodes");
        assert_eq!(data, b"hello");
        assert!(done);
        assert_eq!(left, 5);
    }
}
