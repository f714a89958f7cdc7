//! HTTP/1.1 read off raw sockets, for tests that compare responses byte
//! for byte: a stand-in app's request reader and a client's response
//! reader that frames as RFC 9112 §6.3 says.

use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use super::within;

/// The method, path and `Content-Length` of the next request head in
/// `buf` (read from `stream` as needed), which is left holding what
/// follows the head.
pub async fn read_request_head(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
) -> Option<(String, String, usize)> {
    loop {
        let mut fields = [httparse::EMPTY_HEADER; 32];
        let mut request = httparse::Request::new(&mut fields);
        if let Ok(httparse::Status::Complete(len)) = request.parse(buf) {
            let method = request.method?.to_owned();
            let path = request.path?.to_owned();
            let body_len = request
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .and_then(|h| std::str::from_utf8(h.value).ok()?.parse().ok())
                .unwrap_or(0);
            buf.drain(..len);
            return Some((method, path, body_len));
        }
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// A response as a client reads it off a kept-alive connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Raw {
    /// The status line, as written.
    pub status_line: String,
    /// Lower-cased names, in order, `date` and `x-request-id` left out
    /// (they differ by request).
    pub fields: Vec<(String, String)>,
    pub has_date: bool,
    pub body: Vec<u8>,
}

impl Raw {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one response from `stream`, framed as RFC 9112 §6.3 says; what
/// was read past it stays in `buf`.
pub async fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>, head_request: bool) -> Raw {
    let (status_line, status, fields, has_date, head_len) = loop {
        let mut slots = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut slots);
        if let httparse::Status::Complete(len) = response.parse(buf).expect("a response head") {
            let line_end = buf.windows(2).position(|w| w == b"\r\n").expect("line");
            let line = String::from_utf8_lossy(&buf[..line_end]).into_owned();
            let mut fields = Vec::new();
            let mut has_date = false;
            for field in response.headers.iter() {
                let name = field.name.to_ascii_lowercase();
                has_date |= name == "date";
                if name != "date" && name != "x-request-id" {
                    fields.push((name, String::from_utf8_lossy(field.value).into_owned()));
                }
            }
            break (line, response.code.expect("code"), fields, has_date, len);
        }
        fill(stream, buf).await;
    };
    buf.drain(..head_len);
    let value = |name: &str| {
        fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let mut body = Vec::new();
    if head_request || status == 204 || status == 304 || status < 200 {
        // No body, whatever the fields say.
    } else if value("transfer-encoding").as_deref() == Some("chunked") {
        loop {
            let (start, size) = loop {
                if let Ok(httparse::Status::Complete((start, size))) =
                    httparse::parse_chunk_size(buf)
                {
                    break (start, size as usize);
                }
                fill(stream, buf).await;
            };
            while buf.len() < start + size + 2 {
                fill(stream, buf).await;
            }
            assert_eq!(&buf[start + size..start + size + 2], b"\r\n", "chunk end");
            body.extend_from_slice(&buf[start..start + size]);
            buf.drain(..start + size + 2);
            if size == 0 {
                break;
            }
        }
    } else if let Some(length) = value("content-length") {
        // A list of the same length (RFC 9110 §8.6) counts once.
        let first = length.split(',').next().unwrap_or_default().trim();
        let length: usize = first.parse().expect("a length");
        while buf.len() < length {
            fill(stream, buf).await;
        }
        body = buf.drain(..length).collect();
    } else {
        loop {
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await.expect("read") {
                0 => break,
                n => buf.extend_from_slice(&chunk[..n]),
            }
        }
        body = std::mem::take(buf);
    }
    Raw {
        status_line,
        fields,
        has_date,
        body,
    }
}

pub async fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>) {
    let mut chunk = [0u8; 4096];
    let n = within(
        Duration::from_secs(10),
        "response bytes",
        stream.read(&mut chunk),
    )
    .await
    .expect("read");
    assert!(n > 0, "the connection closed mid-response: {buf:?}");
    buf.extend_from_slice(&chunk[..n]);
}

/// Whether the peer closes the connection (within 5 s).
pub async fn closes(stream: &mut TcpStream) -> bool {
    let mut byte = [0u8; 1];
    matches!(
        tokio::time::timeout(Duration::from_secs(5), stream.read(&mut byte)).await,
        Ok(Ok(0) | Err(_))
    )
}
