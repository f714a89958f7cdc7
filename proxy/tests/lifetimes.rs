//! Every state of a client connection has a bound, and the idle bound is
//! not the head bound (issue: an ALB reusing a connection the proxy had
//! closed after 10 s of keep-alive answered 502).

mod support;

use std::time::Duration;

use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const GET: &[u8] = b"GET /api/health HTTP/1.1\r\nhost: proxy\r\n\r\n";

/// Reads one complete response from an open connection (at most 5 s).
async fn read_response(stream: &mut TcpStream) -> Vec<u8> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    let read = async {
        loop {
            if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buffer[..end]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                if buffer.len() >= end + 4 + length {
                    return;
                }
            }
            let n = stream.read(&mut chunk).await.expect("read");
            assert!(
                n > 0,
                "closed mid-response: {:?}",
                String::from_utf8_lossy(&buffer)
            );
            buffer.extend_from_slice(&chunk[..n]);
        }
    };
    tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .expect("a response within 5 s");
    buffer
}

/// Waits until the proxy closes `stream` (EOF or reset), at most `limit`.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    let mut chunk = [0u8; 1024];
    let wait = async {
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(limit, wait).await.is_ok()
}

/// Whether the connection is still open: a request on it gets an answer.
async fn still_serves(stream: &mut TcpStream) -> bool {
    if stream.write_all(GET).await.is_err() {
        return false;
    }
    let mut chunk = [0u8; 4096];
    matches!(
        tokio::time::timeout(Duration::from_secs(5), stream.read(&mut chunk)).await,
        Ok(Ok(n)) if n > 0 && chunk.starts_with(b"HTTP/1.1 200")
    )
}

async fn proxy_with(vars: &[(&str, &str)]) -> (JwksServer, Upstream, Proxy) {
    let jwks = start_jwks(&[key_a()]).await;
    let upstream = start_upstream().await;
    let mut settings = settings(&jwks, &upstream);
    for (name, value) in vars {
        settings = settings.with(name, *value);
    }
    let proxy = start_proxy(settings).await;
    (jwks, upstream, proxy)
}

/// The field report, as it was measured: default settings, a second request
/// after 10.5 s of keep-alive. Before the fix the socket was already closed.
#[tokio::test(flavor = "multi_thread")]
async fn a_keep_alive_connection_idle_past_the_head_timeout_still_serves() {
    let (_jwks, upstream, proxy) = proxy_with(&[]).await;
    let mut stream = TcpStream::connect(proxy.data).await.expect("connect");
    stream.write_all(GET).await.expect("write");
    assert!(
        read_response(&mut stream)
            .await
            .starts_with(b"HTTP/1.1 200")
    );
    tokio::time::sleep(Duration::from_millis(10_500)).await;
    assert!(still_serves(&mut stream).await, "closed after 10.5 s idle");
    assert_eq!(upstream.count(), 2);
}

/// The same kind with short settings: idle longer than the head timeout
/// but shorter than the idle timeout keeps the connection.
#[tokio::test(flavor = "multi_thread")]
async fn idle_time_is_bounded_by_the_idle_timeout_not_the_head_timeout() {
    let (_jwks, _upstream, proxy) = proxy_with(&[
        ("PROXY_HEADER_READ_TIMEOUT", "1"),
        ("PROXY_IDLE_TIMEOUT", "5"),
    ])
    .await;
    let mut stream = TcpStream::connect(proxy.data).await.expect("connect");
    stream.write_all(GET).await.expect("write");
    read_response(&mut stream).await;
    tokio::time::sleep(Duration::from_millis(1_800)).await;
    assert!(
        still_serves(&mut stream).await,
        "closed by the head timeout while idle"
    );
    // Now left idle: the idle timeout closes it, and says so in a metric.
    assert!(closed_within(&mut stream, Duration::from_secs(10)).await);
    eventually("the idle close is counted", async || {
        proxy
            .metric(r#"retainwise_proxy_client_timeouts_total{kind="idle"}"#)
            .await
            >= 1.0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_connection_that_sends_nothing_is_closed_by_the_head_timeout() {
    let (_jwks, _upstream, proxy) = proxy_with(&[
        ("PROXY_HEADER_READ_TIMEOUT", "1"),
        ("PROXY_IDLE_TIMEOUT", "30"),
    ])
    .await;
    let mut stream = TcpStream::connect(proxy.data).await.expect("connect");
    assert!(closed_within(&mut stream, Duration::from_secs(10)).await);
    assert_eq!(
        proxy
            .metric(r#"retainwise_proxy_client_timeouts_total{kind="header_read"}"#)
            .await,
        1.0
    );
}

/// A head that trickles in a byte at a time is cut one head timeout after
/// its first byte, however long the idle timeout.
#[tokio::test(flavor = "multi_thread")]
async fn a_trickling_head_is_cut_by_the_head_timeout() {
    let (_jwks, upstream, proxy) = proxy_with(&[
        ("PROXY_HEADER_READ_TIMEOUT", "1"),
        ("PROXY_IDLE_TIMEOUT", "30"),
    ])
    .await;
    let mut stream = TcpStream::connect(proxy.data).await.expect("connect");
    let mut cut = false;
    for byte in b"GET /api/health HTTP/1.1\r\nhost: proxy\r\nx-slow: aaaaaaaaaaaaaaaaaaaaaaaaaaa" {
        if stream.write_all(&[*byte]).await.is_err() {
            cut = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    cut = cut || closed_within(&mut stream, Duration::from_secs(5)).await;
    assert!(cut, "a 7 s head was not cut");
    assert_eq!(upstream.count(), 0);
}

/// A later request on a kept-alive connection gets the head timeout from
/// its first byte, not from the end of the previous response.
#[tokio::test(flavor = "multi_thread")]
async fn a_later_head_is_timed_from_its_first_byte() {
    let (_jwks, upstream, proxy) = proxy_with(&[
        ("PROXY_HEADER_READ_TIMEOUT", "1"),
        ("PROXY_IDLE_TIMEOUT", "30"),
    ])
    .await;
    let mut stream = TcpStream::connect(proxy.data).await.expect("connect");
    stream.write_all(GET).await.expect("write");
    read_response(&mut stream).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    // Half a head, then silence: closed about a second later.
    stream
        .write_all(b"GET /api/health HTTP/1.1\r\n")
        .await
        .expect("write");
    assert!(closed_within(&mut stream, Duration::from_secs(10)).await);
    assert_eq!(upstream.count(), 1);
}

/// A request body that stops arriving gets 408, and the stall is counted.
#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_request_body_gets_408() {
    let (_jwks, upstream, proxy) = proxy_with(&[("PROXY_BODY_IDLE_TIMEOUT", "1")]).await;
    let token = valid_token(key_a());
    let mut stream = TcpStream::connect(proxy.data).await.expect("connect");
    let head = format!(
        "POST /api/uploads HTTP/1.1\r\nhost: proxy\r\nauthorization: Bearer {token}\r\ncontent-length: 100000\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    stream.write_all(&[b'x'; 1000]).await.expect("write");
    let reply = read_response(&mut stream).await;
    assert!(
        reply.starts_with(b"HTTP/1.1 408"),
        "{}",
        String::from_utf8_lossy(&reply)
    );
    assert!(String::from_utf8_lossy(&reply).contains("request_timeout"));
    assert_eq!(
        proxy
            .metric(r#"retainwise_proxy_client_timeouts_total{kind="body_idle"}"#)
            .await,
        1.0
    );
    // The app never got a complete body to act on.
    eventually("the app's side of the exchange ends", async || {
        upstream.count() == 1
    })
    .await;
    assert!(upstream.last().body_len < 100_000);
}

/// A client that stops reading a large response is disconnected after the
/// body idle time instead of holding the connection for ever.
#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_stops_reading_is_disconnected() {
    let (_jwks, upstream, proxy) = proxy_with(&[("PROXY_BODY_IDLE_TIMEOUT", "1")]).await;
    upstream.set_response_len(64 * 1024 * 1024);
    let mut stream = TcpStream::connect(proxy.data).await.expect("connect");
    stream.write_all(GET).await.expect("write");
    // Read nothing: the socket buffers fill, the proxy's writes stall.
    eventually("the stalled write is counted", async || {
        proxy
            .metric(r#"retainwise_proxy_client_timeouts_total{kind="response_write"}"#)
            .await
            >= 1.0
    })
    .await;
    // Reading now drains what was buffered, then the connection ends.
    let mut sink = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut sink)).await;
    assert!(sink.len() < 64 * 1024 * 1024, "the whole body was sent");
}

/// An HTTP/2 connection with no stream open is closed after the idle
/// timeout (with GOAWAY), not kept for ever.
#[tokio::test(flavor = "multi_thread")]
async fn an_idle_http2_connection_is_closed() {
    // The idle timeout is well above the head timeout, so the check below
    // has seconds of margin on a loaded machine.
    let (_jwks, _upstream, proxy) = proxy_with(&[
        ("PROXY_HEADER_READ_TIMEOUT", "1"),
        ("PROXY_IDLE_TIMEOUT", "4"),
    ])
    .await;
    let stream = TcpStream::connect(proxy.data).await.expect("connect");
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .expect("h2 handshake");
    let driver = tokio::spawn(connection);
    let request = http::Request::get(proxy.url("/api/health"))
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .expect("request");
    let response = sender.send_request(request).await.expect("h2 response");
    assert_eq!(response.status(), 200);
    drop(response);
    // Longer than the head timeout: HTTP/2 idleness is bounded by the idle
    // timeout alone.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert!(!driver.is_finished(), "closed before the idle timeout");
    let ended = tokio::time::timeout(Duration::from_secs(10), driver).await;
    assert!(ended.is_ok(), "the idle HTTP/2 connection was kept open");
}

/// The proxy tells HTTP/1.1 from h2c by peeking at a connection's first
/// bytes. An HTTP/1.1 request whose first segment could still be the start
/// of the HTTP/2 preface (`P` of `POST`) is read on and served as HTTP/1.1,
/// and the connection stays usable.
#[tokio::test(flavor = "multi_thread")]
async fn a_request_whose_first_byte_could_open_http2_is_served_as_http1() {
    let (_jwks, upstream, proxy) = proxy_with(&[]).await;
    let mut stream = TcpStream::connect(proxy.data).await.expect("connect");
    stream.write_all(b"P").await.expect("write");
    tokio::time::sleep(Duration::from_millis(200)).await;
    stream
        .write_all(b"OST /api/health HTTP/1.1\r\nhost: proxy\r\ncontent-length: 2\r\n\r\nok")
        .await
        .expect("write");
    let response = read_response(&mut stream).await;
    assert!(
        response.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&response)
    );
    assert!(still_serves(&mut stream).await);
    assert_eq!(upstream.count(), 2);
}

/// The HTTP/2 preface arriving in two segments is still h2c: the proxy
/// answers with its own SETTINGS frame (RFC 9113 section 3.4).
#[tokio::test(flavor = "multi_thread")]
async fn an_http2_preface_in_two_segments_opens_h2c() {
    let (_jwks, _upstream, proxy) = proxy_with(&[]).await;
    let mut stream = TcpStream::connect(proxy.data).await.expect("connect");
    let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    stream.write_all(&preface[..9]).await.expect("write");
    tokio::time::sleep(Duration::from_millis(200)).await;
    stream.write_all(&preface[9..]).await.expect("write");
    // An empty SETTINGS frame: length 0, type 4, no flags, stream 0.
    stream
        .write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0])
        .await
        .expect("write");
    let mut header = [0u8; 9];
    tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut header))
        .await
        .expect("a frame within 5 s")
        .expect("read a frame header");
    assert_eq!(header[3], 4, "the first frame is SETTINGS: {header:?}");
}

const PARKED: &str = "retainwise_proxy_parked_connections";

/// Waits until the proxy reports `count` parked connections.
async fn parked(proxy: &Proxy, count: f64) {
    eventually(&format!("{count} parked connection(s)"), async || {
        proxy.metric(PARKED).await == count
    })
    .await;
}

/// An idle HTTP/1.1 connection is parked without hyper's buffers and
/// serves its next request as if nothing happened, again and again, and
/// the idle bound still runs while it is parked.
#[tokio::test(flavor = "multi_thread")]
async fn an_idle_connection_is_parked_and_serves_its_next_request() {
    let (_jwks, upstream, proxy) = proxy_with(&[("PROXY_IDLE_TIMEOUT", "4")]).await;
    let mut stream = TcpStream::connect(proxy.data).await.expect("connect");
    for round in 1..=3 {
        stream.write_all(GET).await.expect("write");
        let response = read_response(&mut stream).await;
        assert!(response.starts_with(b"HTTP/1.1 200"), "round {round}");
        parked(&proxy, 1.0).await;
    }
    assert_eq!(upstream.count(), 3);
    // Parked, the connection is still closed by the idle timeout.
    assert!(closed_within(&mut stream, Duration::from_secs(10)).await);
    parked(&proxy, 0.0).await;
    assert!(
        proxy
            .metric(r#"retainwise_proxy_client_timeouts_total{kind="idle"}"#)
            .await
            >= 1.0
    );
}

/// Reads until `count` responses have arrived on `stream` (at most 5 s).
async fn read_responses(stream: &mut TcpStream, count: usize) -> Vec<u8> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    let read = async {
        while buffer.windows(12).filter(|w| *w == b"HTTP/1.1 200").count() < count {
            let n = stream.read(&mut chunk).await.expect("read");
            assert!(n > 0, "closed: {:?}", String::from_utf8_lossy(&buffer));
            buffer.extend_from_slice(&chunk[..n]);
        }
    };
    tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .expect("the responses within 5 s");
    buffer
}

/// Pipelined requests after a park are all answered, and so is a second
/// request whose head the network cut in two around a pause longer than
/// the park delay: a park must never drop bytes hyper already read.
#[tokio::test(flavor = "multi_thread")]
async fn pipelined_requests_around_a_park_are_all_answered() {
    let (_jwks, upstream, proxy) = proxy_with(&[]).await;
    let mut stream = TcpStream::connect(proxy.data).await.expect("connect");
    stream.write_all(GET).await.expect("write");
    read_response(&mut stream).await;
    parked(&proxy, 1.0).await;

    // Parked for longer than the park delay: the new connection must not
    // be parked before it has parsed what arrived.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let two = [GET, GET].concat();
    stream.write_all(&two).await.expect("write");
    read_responses(&mut stream, 2).await;
    parked(&proxy, 1.0).await;

    // One whole request and the start of the next, then a pause.
    let cut = GET.len() / 2;
    stream
        .write_all(&[GET, &GET[..cut]].concat())
        .await
        .expect("write");
    read_response(&mut stream).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        proxy.metric(PARKED).await,
        0.0,
        "parked with half a head unparsed"
    );
    stream.write_all(&GET[cut..]).await.expect("write");
    read_response(&mut stream).await;
    assert_eq!(upstream.count(), 5);
}
