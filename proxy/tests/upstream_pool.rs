//! The proxy's connections to the app (`proxy/src/pool.rs`): kept alive and
//! reused; replaced without losing a request when the app closed them;
//! never reused with part of a response still unread. The app here is a
//! plain TCP server, so each test decides exactly when a connection ends.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use support::raw::send_bytes;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How the stand-in app treats a connection after each response.
#[derive(Debug, Clone, Copy)]
enum AfterResponse {
    /// Waits for the next request.
    KeepAlive,
    /// Closes the connection (no `Connection: close`) after this long.
    CloseAfter(Duration),
}

/// A minimal HTTP/1.1 app: answers `GET /big` with a head announcing 1 MB
/// and only 1,000 bytes of it (then waits); closes the connection without
/// an answer on any request for `/drop`; answers any other request with
/// `ok <n>`, where n counts connections that sent a request. Records the
/// request line and the `Host` of each request.
struct RawApp {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    hosts: Arc<std::sync::Mutex<Vec<(String, String)>>>,
}

async fn raw_app(after: AfterResponse) -> RawApp {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let connections = Arc::new(AtomicUsize::new(0));
    let hosts = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (count, seen) = (Arc::clone(&connections), Arc::clone(&hosts));
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (count, seen) = (Arc::clone(&count), Arc::clone(&seen));
            tokio::spawn(serve(stream, after, count, seen));
        }
    });
    RawApp {
        addr,
        connections,
        hosts,
    }
}

async fn serve(
    mut stream: TcpStream,
    after: AfterResponse,
    count: Arc<AtomicUsize>,
    hosts: Arc<std::sync::Mutex<Vec<(String, String)>>>,
) {
    let mut number = 0;
    let mut buf = Vec::new();
    loop {
        let head = loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                buf.drain(..end + 4);
                break head;
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        if number == 0 {
            number = count.fetch_add(1, Ordering::SeqCst) + 1;
        }
        let line = head.lines().next().unwrap_or("").to_owned();
        let host = head
            .lines()
            .find_map(|line| line.strip_prefix("host: ").or(line.strip_prefix("Host: ")))
            .unwrap_or("")
            .to_owned();
        hosts.lock().expect("hosts").push((line, host));
        if head.contains(" /drop ") {
            return;
        }
        if head.starts_with("GET /big ") {
            let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 1000000\r\n\r\n";
            let _ = stream.write_all(reply).await;
            let _ = stream.write_all(&[b'x'; 1000]).await;
            tokio::time::sleep(Duration::from_secs(30)).await;
            return;
        }
        let body = format!("ok {number}");
        let reply = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        if stream.write_all(reply.as_bytes()).await.is_err() {
            return;
        }
        if let AfterResponse::CloseAfter(delay) = after {
            tokio::time::sleep(delay).await;
            return;
        }
    }
}

async fn proxy_for(app: &RawApp) -> (JwksServer, Proxy) {
    proxy_in_front_of(app.addr).await
}

/// Sends `tries` authenticated requests one after another, `pause` apart,
/// and returns those not answered 200: (attempt, status, body).
async fn failures(proxy: &Proxy, tries: usize, pause: Duration) -> Vec<(usize, u16, String)> {
    let token = valid_token(key_a());
    let mut failed = Vec::new();
    for attempt in 0..tries {
        let reply = send(proxy.get("/api/uploads").bearer_auth(&token)).await;
        if reply.status != 200 {
            failed.push((attempt, reply.status, reply.text()));
        }
        // Not even a zero sleep: tokio's timer would add a tick.
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
    }
    failed
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_to_the_app_are_kept_alive_and_reused() {
    let app = raw_app(AfterResponse::KeepAlive).await;
    let (_jwks, proxy) = proxy_for(&app).await;
    let token = valid_token(key_a());
    for _ in 0..20 {
        let reply = send(proxy.get("/api/uploads").bearer_auth(&token)).await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        assert_eq!(reply.text(), "ok 1");
    }
    assert_eq!(app.connections.load(Ordering::SeqCst), 1);
}

/// The app closes a kept-alive connection while it sits in the pool (its
/// own idle timeout): the next request goes out on a new connection, and
/// none of them fails.
#[tokio::test(flavor = "multi_thread")]
async fn a_connection_the_app_closed_while_idle_costs_no_request() {
    let app = raw_app(AfterResponse::CloseAfter(Duration::from_millis(20))).await;
    let (_jwks, proxy) = proxy_for(&app).await;
    let failures = failures(&proxy, 20, Duration::from_millis(80)).await;
    assert!(failures.is_empty(), "failed: {failures:?}");
    assert_eq!(app.connections.load(Ordering::SeqCst), 20);
}

/// The same, with the app closing at once after each response and the
/// next request sent straight after: the closest a client can come to the
/// app's close crossing the proxy's reuse.
#[tokio::test(flavor = "multi_thread")]
async fn a_connection_the_app_closes_after_each_response_costs_no_request() {
    let app = raw_app(AfterResponse::CloseAfter(Duration::ZERO)).await;
    let (_jwks, proxy) = proxy_for(&app).await;
    let failures = failures(&proxy, 50, Duration::ZERO).await;
    assert!(failures.is_empty(), "failed: {failures:?}");
}

/// The rule for sending a request again after its connection closed under
/// it: a body-less request with an idempotent method goes out once more,
/// on a new connection (the app closes that one too here: 502 after two
/// tries, never more); a POST is never sent twice, since the app may have
/// acted on it.
#[tokio::test(flavor = "multi_thread")]
async fn only_idempotent_body_less_requests_are_sent_again() {
    let app = raw_app(AfterResponse::KeepAlive).await;
    let (_jwks, proxy) = proxy_for(&app).await;
    let token = valid_token(key_a());
    let count = |line: &str| {
        let seen = app.hosts.lock().expect("seen");
        seen.iter().filter(|(l, _)| l == line).count()
    };
    for (method, resent) in [("GET", true), ("DELETE", true), ("POST", false)] {
        // A kept-alive connection first: only those are retried. Warmed
        // by the same method, since a body-less GET and a DELETE go by
        // different clients with their own idle connections.
        let method: reqwest::Method = method.parse().expect("method");
        let warm = proxy
            .client
            .request(method.clone(), proxy.url("/api/uploads"))
            .bearer_auth(&token);
        let warm = send(warm).await;
        assert_eq!(warm.status, 200, "{}", warm.text());
        let request = proxy
            .client
            .request(method.clone(), proxy.url("/drop"))
            .bearer_auth(&token);
        let reply = send(request).await;
        assert_eq!(reply.status, 502, "{method}: {}", reply.text());
        let line = format!("{method} /drop HTTP/1.1");
        let expected = if resent { 2 } else { 1 };
        assert_eq!(count(&line), expected, "{method} /drop reached the app");
    }
    // A body makes a PUT unrepeatable: the body was streamed, not kept.
    let warm = send(
        proxy
            .client
            .put(proxy.url("/api/uploads"))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(warm.status, 200);
    let reply = send(
        proxy
            .client
            .put(proxy.url("/drop"))
            .bearer_auth(&token)
            .body("a body"),
    )
    .await;
    assert_eq!(reply.status, 502, "{}", reply.text());
    assert_eq!(count("PUT /drop HTTP/1.1"), 1);
}

/// A client that goes away in the middle of a response body leaves the
/// rest of that body on the app's connection: that connection must never
/// carry another request (its next "response" would be the old body).
#[tokio::test(flavor = "multi_thread")]
async fn a_connection_with_a_response_left_unread_is_never_reused() {
    let app = raw_app(AfterResponse::KeepAlive).await;
    let (_jwks, proxy) = proxy_for(&app).await;
    let token = valid_token(key_a());
    for round in 1..=3 {
        let mut client = TcpStream::connect(proxy.data).await.expect("connect");
        let request =
            format!("GET /big HTTP/1.1\r\nhost: proxy\r\nauthorization: Bearer {token}\r\n\r\n");
        client.write_all(request.as_bytes()).await.expect("write");
        let mut head = [0u8; 64];
        let n = within(
            Duration::from_secs(10),
            "the head of /big",
            client.read(&mut head),
        )
        .await
        .expect("read");
        assert!(head[..n].starts_with(b"HTTP/1.1 200"));
        drop(client);

        let reply = within(
            Duration::from_secs(10),
            "a request after the cut",
            send(proxy.get("/api/uploads").bearer_auth(&token)),
        )
        .await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        // Not the rest of /big's body, and a new connection each round:
        // /big went out on the idle connection, which was then dropped.
        assert_eq!(reply.text(), format!("ok {}", round + 1));
    }
}

/// HTTP/1.0 needs no `Host`; HTTP/1.1 to the app does (RFC 9112 §3.2): the
/// proxy sends the app's own authority, as hyper-util's client did.
#[tokio::test(flavor = "multi_thread")]
async fn a_request_without_host_reaches_the_app_with_its_authority() {
    let app = raw_app(AfterResponse::KeepAlive).await;
    let (_jwks, proxy) = proxy_for(&app).await;
    let token = valid_token(key_a());
    let request = format!("GET /api/uploads HTTP/1.0\r\nauthorization: Bearer {token}\r\n\r\n");
    let reply = send_bytes(proxy.data, request.as_bytes()).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let seen = app.hosts.lock().expect("hosts").clone();
    assert_eq!(
        seen,
        [("GET /api/uploads HTTP/1.1".to_owned(), app.addr.to_string())]
    );
}
