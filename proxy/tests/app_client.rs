//! The proxy's two clients to the app (`proxy/src/h1client.rs` for a
//! body-less `GET` or `HEAD`, hyper's for the rest): the same app response
//! reads the same through either, however the app frames it and however
//! its bytes are split; a connection is used again only after a response
//! whose end was read exactly.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use support::wire::{Raw, closes, read_request_head, read_response};
use support::*;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

/// What the app sends for a path: the bytes, in pieces written apart, and
/// whether it closes the connection after them.
fn answer(path: &str) -> (Vec<&'static [u8]>, bool) {
    match path {
        "/early-hints" => (
            vec![
                b"HTTP/1.1 103 Early Hints\r\nlink: </s.css>\r\n\r\n",
                b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
            ],
            false,
        ),
        "/trailers" => (
            vec![
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n",
                b"5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nx-sum: 11\r\n\r\n",
            ],
            false,
        ),
        // Split inside the status line, a field, a chunk-size line, chunk
        // data and the CRLF after it.
        "/pieces" => (
            vec![
                b"HTTP/1.",
                b"1 200 OK\r\ntransfer-enc",
                b"oding: chunked\r\nx-kind: pie",
                b"ces\r\n\r\n1",
                b"0\r\n0123456",
                b"789abcdef\r",
                b"\n0\r\n\r",
                b"\n",
            ],
            false,
        ),
        // No reason phrase, which RFC 9112 §4 allows.
        "/no-reason" => (vec![b"HTTP/1.1 200\r\ncontent-length: 2\r\n\r\nok"], false),
        "/list-length" => (
            vec![b"HTTP/1.1 200 OK\r\ncontent-length: 5, 5\r\n\r\nhello"],
            false,
        ),
        "/http10" => (
            vec![b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok"],
            false,
        ),
        "/http10-keep-alive" => (
            vec![b"HTTP/1.0 200 OK\r\nconnection: keep-alive\r\ncontent-length: 2\r\n\r\nok"],
            false,
        ),
        // More than the length: the rest must never be read as the next
        // request's response.
        "/extra" => (
            vec![b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokHTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nforgd"],
            false,
        ),
        "/both" => (
            vec![b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"],
            false,
        ),
        "/short" => (
            vec![b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhello"],
            true,
        ),
        "/lengths-disagree" => (
            vec![b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\nhello"],
            false,
        ),
        "/switch" => (
            vec![b"HTTP/1.1 101 Switching Protocols\r\nupgrade: x\r\nconnection: upgrade\r\n\r\n"],
            false,
        ),
        _ => (
            vec![b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nx-kind: length\r\n\r\nhello"],
            false,
        ),
    }
}

/// An app that answers each request as [`answer`] says and counts the
/// connections it accepted.
async fn scripted_app() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&accepted);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(serve(stream));
        }
    });
    (addr, accepted)
}

async fn serve(mut stream: TcpStream) {
    // Each piece leaves when written, not when the last is acknowledged.
    stream.set_nodelay(true).expect("nodelay");
    let mut buf = Vec::new();
    loop {
        let Some((_, path, body_len)) = read_request_head(&mut stream, &mut buf).await else {
            return;
        };
        while buf.len() < body_len {
            support::wire::fill(&mut stream, &mut buf).await;
        }
        buf.drain(..body_len);
        let (pieces, close) = answer(&path);
        for piece in pieces {
            if stream.write_all(piece).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if close {
            return;
        }
        if path == "/then-408" {
            // As a server does at its idle timeout: a 408 nobody asked
            // for, then the close.
            tokio::time::sleep(Duration::from_millis(50)).await;
            let _ = stream
                .write_all(b"HTTP/1.1 408 Request Timeout\r\nconnection: close\r\ncontent-length: 0\r\n\r\n")
                .await;
            return;
        }
        if path == "/then-close" {
            tokio::time::sleep(Duration::from_millis(50)).await;
            return;
        }
    }
}

fn get(path: &str, token: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nhost: proxy\r\nauthorization: Bearer {token}\r\n\r\n")
        .into_bytes()
}

/// A POST with a body goes through hyper's client.
fn post(path: &str, token: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nhost: proxy\r\nauthorization: Bearer {token}\r\ncontent-length: 1\r\n\r\nx"
    )
    .into_bytes()
}

/// One request on a new client connection, and its response.
async fn one(proxy: &Proxy, request: &[u8]) -> Raw {
    let mut client = TcpStream::connect(proxy.data).await.expect("connect");
    client.write_all(request).await.expect("write");
    let mut buf = Vec::new();
    within(
        Duration::from_secs(10),
        "a response",
        read_response(&mut client, &mut buf, false),
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn every_framing_reads_the_same_through_either_client() {
    let (app, _) = scripted_app().await;
    let (_jwks, proxy) = proxy_in_front_of(app).await;
    let token = valid_token(key_a());
    for (path, body) in [
        ("/length", "hello"),
        ("/early-hints", "ok"),
        ("/trailers", "hello world"),
        ("/pieces", "0123456789abcdef"),
        ("/list-length", "hello"),
        ("/no-reason", "ok"),
        ("/http10", "ok"),
        ("/http10-keep-alive", "ok"),
        ("/extra", "ok"),
    ] {
        let by_ours = one(&proxy, &get(path, &token)).await;
        let by_hyper = one(&proxy, &post(path, &token)).await;
        assert_eq!(by_ours, by_hyper, "{path}");
        assert_eq!(String::from_utf8_lossy(&by_ours.body), body, "{path}");
        assert!(
            by_ours.status_line.starts_with("HTTP/1.1 200"),
            "{path}: {by_ours:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connection_is_used_again_only_after_a_response_read_exactly() {
    let (app, accepted) = scripted_app().await;
    let (_jwks, proxy) = proxy_in_front_of(app).await;
    let token = valid_token(key_a());
    // On one client connection, so that each request waits for the last.
    let mut client = TcpStream::connect(proxy.data).await.expect("connect");
    let mut buf = Vec::new();
    let mut connections = Vec::new();
    for path in [
        "/length",
        "/length",
        "/pieces",
        "/early-hints",
        "/length",
        "/http10",
        "/length",
        "/http10-keep-alive",
        "/length",
        "/extra",
        "/length",
        "/both",
        "/length",
    ] {
        client.write_all(&get(path, &token)).await.expect("write");
        let reply = within(
            Duration::from_secs(10),
            "a response",
            read_response(&mut client, &mut buf, false),
        )
        .await;
        assert!(
            reply.status_line.starts_with("HTTP/1.1 200"),
            "{path}: {reply:?}"
        );
        if path == "/length" {
            assert_eq!(reply.body, b"hello", "after the one before");
        }
        connections.push((path, accepted.load(Ordering::SeqCst)));
    }
    let new_after: Vec<&str> = connections
        .windows(2)
        .filter(|pair| pair[1].1 > pair[0].1)
        .map(|pair| pair[0].0)
        .collect();
    assert_eq!(
        new_after,
        ["/http10", "/extra", "/both"],
        "a new connection after exactly these: {connections:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn both_framings_at_once_lose_the_length() {
    let (app, _) = scripted_app().await;
    let (_jwks, proxy) = proxy_in_front_of(app).await;
    let token = valid_token(key_a());
    // Through hyper's client too, which passes the length on: the client
    // got `hel` under `content-length: 3`, a whole-looking wrong body.
    for request in [get("/both", &token), post("/both", &token)] {
        let reply = one(&proxy, &request).await;
        assert_eq!(reply.body, b"hello", "{reply:?}");
        assert_eq!(reply.field("content-length"), None, "{reply:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn responses_that_cannot_be_read_exactly_are_refused_or_cut() {
    let (app, _) = scripted_app().await;
    let (_jwks, proxy) = proxy_in_front_of(app).await;
    let token = valid_token(key_a());
    for path in ["/lengths-disagree", "/switch"] {
        let reply = one(&proxy, &get(path, &token)).await;
        assert!(
            reply.status_line.starts_with("HTTP/1.1 502"),
            "{path}: {reply:?}"
        );
    }
    // A body that stops short: the client sees its connection close
    // before the length it was promised.
    let mut client = TcpStream::connect(proxy.data).await.expect("connect");
    client
        .write_all(&get("/short", &token))
        .await
        .expect("write");
    let mut buf = Vec::new();
    let head = loop {
        let mut slots = [httparse::EMPTY_HEADER; 16];
        let mut response = httparse::Response::new(&mut slots);
        if let Ok(httparse::Status::Complete(len)) = response.parse(&buf) {
            break len;
        }
        support::wire::fill(&mut client, &mut buf).await;
    };
    assert!(buf.starts_with(b"HTTP/1.1 200"));
    while buf.len() < head + 5 {
        support::wire::fill(&mut client, &mut buf).await;
    }
    assert!(closes(&mut client).await, "the connection ends at the cut");
    assert_eq!(&buf[head..], b"hello");
}

/// An app may speak on a connection the proxy holds idle: a `408` at its
/// idle timeout, or just the close. Neither may be taken for the response
/// to the next request, and neither may cost that request.
#[tokio::test(flavor = "multi_thread")]
async fn what_the_app_says_on_an_idle_connection_is_not_a_response() {
    let (app, accepted) = scripted_app().await;
    let (_jwks, proxy) = proxy_in_front_of(app).await;
    let token = valid_token(key_a());
    for path in ["/then-408", "/then-close"] {
        for round in 0..5 {
            let first = one(&proxy, &get(path, &token)).await;
            assert_eq!(first.body, b"hello", "{path} {round}");
            // Long enough for the app to have spoken and closed.
            tokio::time::sleep(Duration::from_millis(200)).await;
            let before = accepted.load(Ordering::SeqCst);
            let next = one(&proxy, &get("/length", &token)).await;
            assert!(
                next.status_line.starts_with("HTTP/1.1 200"),
                "{path} {round}: {next:?}"
            );
            assert_eq!(next.body, b"hello", "{path} {round}");
            assert_eq!(
                accepted.load(Ordering::SeqCst),
                before + 1,
                "{path} {round}: the next request on a new connection"
            );
        }
    }
}
