//! The HTTP/1.1 fast path (`proxy/src/fastpath.rs`) against hyper's path,
//! over raw sockets: every response the fast path writes reads the same
//! as hyper's for the same request and the same app response, framing
//! included; connections move between the two paths without losing or
//! reordering a request.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use support::wire::{Raw, closes, read_request_head, read_response};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// An app that answers by path, each with a different framing.
async fn framing_app() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve_app(stream));
        }
    });
    addr
}

async fn serve_app(mut stream: TcpStream) {
    let mut buf = Vec::new();
    loop {
        let Some((method, path, body_len)) = read_request_head(&mut stream, &mut buf).await else {
            return;
        };
        // The request body (the tests' POSTs carry a few bytes).
        while buf.len() < body_len {
            let mut chunk = [0u8; 1024];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        buf.drain(..body_len);
        let head_only = method == "HEAD";
        let (head, body, close): (&str, &[u8], bool) = match path.as_str() {
            "/chunked" => (
                "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nx-kind: chunked\r\n\r\n",
                b"3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n",
                false,
            ),
            // Delimited by the end of the connection (RFC 9112 §6.3 item 8).
            "/eof" => (
                "HTTP/1.1 200 OK\r\nconnection: close\r\nx-kind: eof\r\n\r\n",
                b"hello",
                true,
            ),
            "/no-content" => (
                "HTTP/1.1 204 No Content\r\nx-kind: none\r\n\r\n",
                b"",
                false,
            ),
            "/not-modified" => (
                "HTTP/1.1 304 Not Modified\r\netag: \"v1\"\r\n\r\n",
                b"",
                false,
            ),
            "/reason" => (
                "HTTP/1.1 299 Fine Thanks\r\ncontent-length: 2\r\n\r\n",
                b"ok",
                false,
            ),
            "/dated" => (
                "HTTP/1.1 200 OK\r\ndate: Sun, 06 Nov 1994 08:49:37 GMT\r\ncontent-length: 5\r\n\r\n",
                b"dated",
                false,
            ),
            _ => (
                "HTTP/1.1 200 OK\r\ncontent-length: 5\r\nx-kind: length\r\n\r\n",
                b"hello",
                false,
            ),
        };
        let mut reply = head.as_bytes().to_vec();
        if !head_only {
            reply.extend_from_slice(body);
        }
        if stream.write_all(&reply).await.is_err() || close {
            return;
        }
    }
}

fn request(method: &str, path: &str, token: &str) -> Vec<u8> {
    format!("{method} {path} HTTP/1.1\r\nhost: proxy\r\nauthorization: Bearer {token}\r\n\r\n")
        .into_bytes()
}

/// A POST with a body: never the fast path's, so hyper serves the
/// connection from it on, until the connection next parks.
fn post(token: &str) -> Vec<u8> {
    format!(
        "POST /warm HTTP/1.1\r\nhost: proxy\r\nauthorization: Bearer {token}\r\ncontent-length: 1\r\n\r\nx"
    )
    .into_bytes()
}

/// The same request through each path: the fast path on a new connection,
/// hyper on a connection that has just carried a POST.
async fn both_ways(proxy: &Proxy, request: &[u8], head_request: bool, token: &str) -> (Raw, Raw) {
    let mut fast = TcpStream::connect(proxy.data).await.expect("connect");
    let mut buf = Vec::new();
    fast.write_all(request).await.expect("write");
    let by_fast_path = read_response(&mut fast, &mut buf, head_request).await;

    let mut slow = TcpStream::connect(proxy.data).await.expect("connect");
    let mut buf = Vec::new();
    slow.write_all(&post(token)).await.expect("write");
    let warm = read_response(&mut slow, &mut buf, false).await;
    assert!(warm.status_line.starts_with("HTTP/1.1 200"), "{warm:?}");
    slow.write_all(request).await.expect("write");
    let by_hyper = read_response(&mut slow, &mut buf, head_request).await;
    (by_fast_path, by_hyper)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_framing_reads_the_same_through_either_path() {
    let app = framing_app().await;
    let (_jwks, proxy) = proxy_in_front_of(app).await;
    let token = valid_token(key_a());
    let paths = [
        "/length",
        "/chunked",
        "/eof",
        "/no-content",
        "/not-modified",
        "/reason",
        "/dated",
    ];
    for path in paths {
        for method in ["GET", "HEAD"] {
            let head_request = method == "HEAD";
            let (fast, hyper) =
                both_ways(&proxy, &request(method, path, &token), head_request, &token).await;
            assert_eq!(fast, hyper, "{method} {path}");
            assert!(fast.has_date, "{method} {path}: a Date");
        }
    }
    // What the comparison stands on, spelled out once.
    let mut client = TcpStream::connect(proxy.data).await.expect("connect");
    let mut buf = Vec::new();
    for (path, body, framing) in [
        ("/length", "hello", ("content-length", "5")),
        ("/chunked", "hello", ("transfer-encoding", "chunked")),
        ("/eof", "hello", ("transfer-encoding", "chunked")),
        ("/reason", "ok", ("content-length", "2")),
    ] {
        client
            .write_all(&request("GET", path, &token))
            .await
            .expect("write");
        let reply = read_response(&mut client, &mut buf, false).await;
        assert_eq!(String::from_utf8_lossy(&reply.body), body, "{path}");
        assert_eq!(reply.field(framing.0), Some(framing.1), "{path}: {reply:?}");
        assert_eq!(reply.field("connection"), None, "{path}: hop-by-hop");
    }
    client
        .write_all(&request("HEAD", "/length", &token))
        .await
        .expect("write");
    let head = read_response(&mut client, &mut buf, true).await;
    assert_eq!(head.field("content-length"), Some("5"));
    client
        .write_all(&request("GET", "/reason", &token))
        .await
        .expect("write");
    let reason = read_response(&mut client, &mut buf, false).await;
    assert_eq!(reason.status_line, "HTTP/1.1 299 Fine Thanks");
    assert!(buf.is_empty(), "nothing past the last response: {buf:?}");
}

/// The proxy's own answers (a 401 here) through either path, to `GET` and
/// to `HEAD`: a `HEAD` gets the length of the body it is not sent, and the
/// connection stays in step for the next request.
#[tokio::test(flavor = "multi_thread")]
async fn the_proxys_own_answers_read_the_same_through_either_path() {
    let app = framing_app().await;
    let (_jwks, proxy) = proxy_in_front_of(app).await;
    let token = valid_token(key_a());
    for method in ["GET", "HEAD"] {
        let unauthenticated = format!("{method} /length HTTP/1.1\r\nhost: proxy\r\n\r\n");
        let (fast, hyper) =
            both_ways(&proxy, unauthenticated.as_bytes(), method == "HEAD", &token).await;
        assert_eq!(fast, hyper, "{method}");
        assert!(fast.status_line.starts_with("HTTP/1.1 401"), "{fast:?}");
        assert!(fast.field("www-authenticate").is_some());
        let length: usize = fast
            .field("content-length")
            .expect("a length")
            .parse()
            .expect("digits");
        assert!(length > 0);
    }
    let mut client = TcpStream::connect(proxy.data).await.expect("connect");
    let mut buf = Vec::new();
    client
        .write_all(b"HEAD /length HTTP/1.1\r\nhost: proxy\r\n\r\n")
        .await
        .expect("write");
    let refused = read_response(&mut client, &mut buf, true).await;
    assert!(refused.status_line.starts_with("HTTP/1.1 401"));
    client
        .write_all(&request("GET", "/length", &token))
        .await
        .expect("write");
    let next = read_response(&mut client, &mut buf, false).await;
    assert_eq!(next.body, b"hello", "in step after a HEAD's 401");
}

/// Requests in one write, the last asking to close: answered in order,
/// then the connection closes.
#[tokio::test(flavor = "multi_thread")]
async fn pipelined_requests_are_answered_in_order_and_close_is_honoured() {
    let app = framing_app().await;
    let (_jwks, proxy) = proxy_in_front_of(app).await;
    let token = valid_token(key_a());
    let mut batch = request("GET", "/chunked", &token);
    batch.extend(request("HEAD", "/length", &token));
    batch.extend(request("GET", "/reason", &token));
    batch.extend(
        format!(
            "GET /length HTTP/1.1\r\nhost: proxy\r\nauthorization: Bearer {token}\r\nconnection: keep-alive, Close\r\n\r\n"
        )
        .into_bytes(),
    );
    let mut client = TcpStream::connect(proxy.data).await.expect("connect");
    client.write_all(&batch).await.expect("write");
    let mut buf = Vec::new();
    let first = read_response(&mut client, &mut buf, false).await;
    let second = read_response(&mut client, &mut buf, true).await;
    let third = read_response(&mut client, &mut buf, false).await;
    let last = read_response(&mut client, &mut buf, false).await;
    assert_eq!(first.body, b"hello");
    assert_eq!(first.field("x-kind"), Some("chunked"));
    assert_eq!(second.field("x-kind"), Some("length"));
    assert!(second.body.is_empty());
    assert_eq!(third.body, b"ok");
    assert_eq!(last.body, b"hello");
    assert_eq!(last.field("connection"), Some("close"));
    assert!(closes(&mut client).await, "closed after Connection: close");
}

/// A connection moves from the fast path to hyper (a POST, a head that
/// arrives in two pieces) and back after it parks, with every request
/// answered, in order.
#[tokio::test(flavor = "multi_thread")]
async fn a_connection_moves_between_the_paths_without_losing_a_request() {
    let app = framing_app().await;
    let (_jwks, proxy) = proxy_in_front_of(app).await;
    let token = valid_token(key_a());
    let mut client = TcpStream::connect(proxy.data).await.expect("connect");
    let mut buf = Vec::new();
    for round in 0..3 {
        for step in 0..4 {
            let (bytes, expect_kind) = match step {
                0 => (request("GET", "/chunked", &token), "chunked"),
                1 => (post(&token), "length"),
                2 => (request("GET", "/eof", &token), "eof"),
                _ => (request("GET", "/length", &token), "length"),
            };
            if step == 3 {
                // A head in two pieces, 50 ms apart.
                let (a, b) = bytes.split_at(20);
                client.write_all(a).await.expect("write");
                tokio::time::sleep(Duration::from_millis(50)).await;
                client.write_all(b).await.expect("write");
            } else {
                client.write_all(&bytes).await.expect("write");
            }
            let reply = read_response(&mut client, &mut buf, false).await;
            assert!(
                reply.status_line.starts_with("HTTP/1.1 200"),
                "round {round} step {step}: {reply:?}"
            );
            assert_eq!(
                reply.field("x-kind"),
                Some(expect_kind),
                "round {round} step {step}"
            );
        }
        // Past PARK_AFTER (250 ms): the next round starts parked, so its
        // first request is the fast path's again.
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
}

/// `write(2)` calls `pid` has made: `syscw` in `/proc/<pid>/io` (proc(5)).
/// The fast path writes to sockets with `send(2)`, which it does not
/// count, so with the access log off a request served whole by the fast
/// path adds none of its own.
fn write_calls(pid: u32) -> u64 {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).expect("/proc/<pid>/io");
    io.lines()
        .find_map(|l| l.strip_prefix("syscw:"))
        .expect("syscw")
        .trim()
        .parse()
        .expect("a count")
}

/// `write(2)` calls the proxy made over 200 requests on one kept-alive
/// connection, each with the next of `tokens`, after 10 to warm up.
async fn writes_over_200_requests(proxy: &Proxy, tokens: &[String]) -> u64 {
    let mut stream = TcpStream::connect(proxy.data).await.expect("connect");
    let mut buf = Vec::new();
    let mut before = 0;
    for i in 0..210 {
        if i == 10 {
            before = write_calls(proxy.pid());
        }
        let token = &tokens[i % tokens.len()];
        let request = format!(
            "GET /api/uploads HTTP/1.1\r\nhost: proxy\r\nauthorization: Bearer {token}\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.expect("write");
        let response = read_response(&mut stream, &mut buf, false).await;
        assert!(
            response.status_line.starts_with("HTTP/1.1 200"),
            "request {i}: {}",
            response.status_line
        );
    }
    write_calls(proxy.pid()) - before
}

/// Waiting for a connection's next request must not make the runtime wake
/// itself. A park timer made anew for each wait, registered while tokio's
/// timer wheel held no earlier one, made tokio write to its eventfd: one
/// `write(2)` a request at one connection, 0.34 to 0.74 at fifty (issue
/// 11). One timer moved on for the connection's life makes none. Checked
/// with one token (a token cache hit) and with every request a signature
/// check (a token cache of one, two tokens in turn), on one core, where
/// the proxy runs the current-thread runtime as on a sidecar's quota.
#[tokio::test]
async fn waiting_for_the_next_request_makes_no_wake_up_writes() {
    let jwks = start_jwks(&[key_a()]).await;
    let upstream = start_upstream().await;
    let base = settings(&jwks, &upstream)
        .with("PROXY_ACCESS_LOG", "false")
        .on_one_core();
    let cached = start_proxy(base.clone()).await;
    let writes = writes_over_200_requests(&cached, &[valid_token(key_a())]).await;
    assert!(
        writes <= 10,
        "{writes} write(2) calls over 200 cached requests"
    );

    let cold = start_proxy(base.with("PROXY_TOKEN_CACHE_SIZE", "1")).await;
    let tokens = [valid_token(key_a()), token(key_a(), "user_other")];
    let writes = writes_over_200_requests(&cold, &tokens).await;
    assert!(
        writes <= 10,
        "{writes} write(2) calls over 200 verified requests"
    );
}
