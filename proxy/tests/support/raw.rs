//! A raw HTTP/1.1 client over a plain `TcpStream`, for requests normal
//! clients refuse to send or would tidy up: absolute-form targets,
//! `OPTIONS *`, `..` segments, `X_User_Id`, duplicate headers, raw `\`.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::Reply;

/// A request written byte for byte as given. `Host: localhost` and
/// `Connection: close` are added unless [`RawRequest::bare`] is used.
#[derive(Debug, Clone)]
pub struct RawRequest {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    bare: bool,
}

impl RawRequest {
    pub fn new(method: &str, target: &str) -> Self {
        Self {
            method: method.to_owned(),
            target: target.to_owned(),
            headers: Vec::new(),
            body: Vec::new(),
            bare: false,
        }
    }

    pub fn get(target: &str) -> Self {
        Self::new("GET", target)
    }

    /// Adds a header line (duplicates allowed, names kept as written).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn bearer(self, token: &str) -> Self {
        self.header("Authorization", &format!("Bearer {token}"))
    }

    pub fn body(mut self, body: &[u8]) -> Self {
        self.body = body.to_vec();
        self
    }

    /// Sends only the header lines given: no `Host`, no `Connection: close`.
    pub fn bare(mut self) -> Self {
        self.bare = true;
        self
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!("{} {} HTTP/1.1\r\n", self.method, self.target).into_bytes();
        if !self.bare {
            out.extend_from_slice(b"Host: localhost\r\n");
        }
        for (name, value) in &self.headers {
            out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        if !self.body.is_empty() {
            out.extend_from_slice(format!("Content-Length: {}\r\n", self.body.len()).as_bytes());
        }
        if !self.bare {
            out.extend_from_slice(b"Connection: close\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
        out
    }

    /// Sends the request to `addr` and reads one response.
    pub async fn send(&self, addr: SocketAddr) -> Reply {
        exchange(addr, &self.to_bytes(), self.method == "HEAD").await
    }
}

/// Writes `bytes` to a new connection to `addr` and reads one response
/// (until it is complete or the peer closes; 10 s at most).
pub async fn send_bytes(addr: SocketAddr, bytes: &[u8]) -> Reply {
    exchange(addr, bytes, false).await
}

async fn exchange(addr: SocketAddr, bytes: &[u8], head: bool) -> Reply {
    let mut stream = TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    // The peer may answer and close before reading everything (431, 400):
    // a failed write is not an error as long as a response comes back.
    let _ = stream.write_all(bytes).await;
    let mut buffer = Vec::new();
    let read = async {
        let mut chunk = [0u8; 64 * 1024];
        loop {
            if let Some(reply) = parse(&buffer, head, false) {
                return reply;
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => {
                    return parse(&buffer, head, true).unwrap_or_else(|| {
                        panic!(
                            "connection closed without a complete response: {:?}",
                            String::from_utf8_lossy(&buffer)
                        )
                    });
                }
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("a response within 10 s")
}

/// Parses a complete response, or returns `None` when more bytes are needed.
/// A response to HEAD has no body. At `eof`, a response without a length
/// ends where the bytes end.
fn parse(buffer: &[u8], head_request: bool, eof: bool) -> Option<Reply> {
    let head_end = buffer.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&buffer[..head_end]).expect("response head is text");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line");
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let mut headers = HeaderMap::new();
    for line in lines {
        let (name, value) = line.split_once(':').expect("header line has a colon");
        headers.append(
            HeaderName::from_bytes(name.trim().as_bytes()).expect("header name"),
            HeaderValue::from_str(value.trim()).expect("header value"),
        );
    }
    let rest = &buffer[head_end + 4..];
    let chunked = headers
        .get("transfer-encoding")
        .is_some_and(|v| v.to_str().is_ok_and(|v| v.contains("chunked")));
    let body = if head_request {
        Vec::new()
    } else if chunked {
        dechunk(rest)?
    } else if let Some(len) = headers.get("content-length") {
        let len: usize = len.to_str().ok()?.parse().ok()?;
        if rest.len() < len {
            return None;
        }
        rest[..len].to_vec()
    } else if status == 204 || status == 304 || (100..200).contains(&status) {
        Vec::new()
    } else if eof {
        rest.to_vec()
    } else {
        return None;
    };
    Some(Reply {
        status,
        headers,
        body: Bytes::from(body),
    })
}

/// Decodes a complete chunked body, or `None` when it is not complete yet.
fn dechunk(mut input: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = input.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&input[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        input = &input[line_end + 2..];
        if size == 0 {
            return Some(body);
        }
        if input.len() < size + 2 {
            return None;
        }
        body.extend_from_slice(&input[..size]);
        input = &input[size + 2..];
    }
}
