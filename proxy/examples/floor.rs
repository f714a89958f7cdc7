//! The floor of the proxy benchmark (issue 11): an HTTP/1.1 forwarder on
//! tokio without hyper, so that `bench-proxy.sh` can say how much of the gap
//! to nginx is the HTTP machinery and how much is tokio's and the kernel's.
//! It is not a proxy and is never deployed.
//!
//! MODE `headermap` does per request what the proxy's pipeline does, with
//! the proxy's own code: parse the head (httparse, as hyper does); build an
//! `http::HeaderMap` of it, values sliced from one `Bytes` as hyper does;
//! `check_target`, `strip_hop_by_hop`, `strip_client_identity`,
//! `find_credential`; the [`Verifier`] with its token cache, over a key set
//! fetched from the JWKS file as the proxy holds it; `strip_credentials`,
//! then `X-User-Id`, `X-Forwarded-For` and `X-Request-Id`; write the head to
//! the app; parse the response into a `HeaderMap`, strip its hop-by-hop
//! fields, add a request id and write it back. Two reads and two writes a
//! request, as the proxy and nginx make; jemalloc, the metrics recorder and
//! its upkeep, as the proxy runs them.
//!
//! What it leaves out that the proxy does: request and response bodies
//! other than `Content-Length` responses (a request with a body, and
//! `HEAD`, get 501), the pool of app connections and the copy of a head
//! that lets a request be sent again (it holds one app connection per
//! client connection), timeouts, parking, the request guard and lingering
//! close, CORS, public paths, the access log and the request metrics. What
//! it does that hyper does not: it copies each head into its `Bytes` and
//! parses the response twice. MODE `raw` rewrites the heads as bytes with
//! none of the proxy's header steps (a few names stripped, no target
//! check): an HTTP floor, not a lower bound of the proxy's own work.
//!
//! `cargo run --release -p retainwise-proxy --example floor -- LISTEN APP
//! JWKS_FILE ISSUER AZP TOKEN_CACHE_SIZE raw|headermap`

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri, Version};
use retainwise_proxy::fetch::KeySource;
use retainwise_proxy::headers::{self, Credential, REQUEST_ID, USER_ID};
use retainwise_proxy::keystore::{KeyStore, RefreshCause};
use retainwise_proxy::metrics::HotMetrics;
use retainwise_proxy::settings::{
    ClaimRules, DEFAULT_JWKS_CACHE_MAX_AGE_SECS, DEFAULT_JWKS_MIN_REFRESH_INTERVAL_SECS,
};
use retainwise_proxy::verify::Verifier;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The proxy's allocator (see `src/main.rs`), so that the comparison is of
/// the code, not of malloc.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [listen, app, jwks, issuer, azp, cache, mode] = &args[..] else {
        eprintln!("usage: floor LISTEN APP JWKS_FILE ISSUER AZP TOKEN_CACHE_SIZE raw|headermap");
        std::process::exit(2);
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let headermap = match mode.as_str() {
        "headermap" => true,
        "raw" => false,
        _ => {
            eprintln!("MODE is raw or headermap");
            std::process::exit(2);
        }
    };
    let metrics = retainwise_proxy::metrics::install().expect("recorder");
    // The key set as the proxy holds it: fetched from the file, looked up
    // by kid and checked for age on every use.
    let store = Arc::new(KeyStore::new(
        Some(KeySource::File(jwks.into())),
        None,
        Duration::from_secs(DEFAULT_JWKS_CACHE_MAX_AGE_SECS),
        Duration::from_secs(DEFAULT_JWKS_MIN_REFRESH_INTERVAL_SECS),
    ));
    runtime.block_on(store.refresh(RefreshCause::Scheduled));
    let rules = ClaimRules {
        issuer: issuer.clone(),
        audiences: None,
        authorized_parties: Some(vec![azp.clone()]),
        leeway: Duration::from_secs(5),
    };
    let verifier = Arc::new(Verifier::new(
        store,
        rules,
        cache.parse().expect("cache size"),
        Arc::new(HotMetrics::register()),
    ));
    let listen: SocketAddr = listen.parse().expect("LISTEN");
    let app: SocketAddr = app.parse().expect("APP");
    runtime.block_on(async move {
        retainwise_proxy::metrics::spawn_upkeep(
            metrics,
            retainwise_proxy::metrics::UPKEEP_INTERVAL,
        );
        let listener = TcpListener::bind(listen).await.expect("bind");
        loop {
            let Ok((client, peer)) = listener.accept().await else {
                continue;
            };
            let _ = client.set_nodelay(true);
            tokio::spawn(serve(client, peer, Arc::clone(&verifier), app, headermap));
        }
    });
}

async fn serve(
    mut client: TcpStream,
    peer: SocketAddr,
    verifier: Arc<Verifier>,
    app: SocketAddr,
    headermap: bool,
) -> std::io::Result<()> {
    let mut upstream = TcpStream::connect(app).await?;
    upstream.set_nodelay(true)?;
    let forwarded_for = peer.ip().to_string();
    let forwarded_value = headers::forwarded_for_value(peer.ip());
    let mut inbound = Vec::with_capacity(8192);
    let mut reply = Vec::with_capacity(8192);
    let mut out = Vec::with_capacity(4096);
    loop {
        let head_len = loop {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut request = httparse::Request::new(&mut headers);
            match request.parse(&inbound) {
                Ok(httparse::Status::Complete(len)) => {
                    out.clear();
                    if !within_scope(&request) {
                        client.write_all(OUT_OF_SCOPE).await?;
                        return Ok(());
                    }
                    let forwarded = if headermap {
                        rewrite_map(
                            &request,
                            &inbound[..len],
                            &verifier,
                            &forwarded_value,
                            &mut out,
                        )
                        .await
                    } else {
                        rewrite(&request, &verifier, &forwarded_for, &mut out).await
                    };
                    if !forwarded {
                        client.write_all(&out).await?;
                        return Ok(());
                    }
                    break len;
                }
                Ok(httparse::Status::Partial) => {}
                Err(_) => return Ok(()),
            }
            if client.read_buf(&mut inbound).await? == 0 {
                return Ok(());
            }
        };
        inbound.drain(..head_len);
        upstream.write_all(&out).await?;

        reply.clear();
        let (status_line_end, response_len) = loop {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut response = httparse::Response::new(&mut headers);
            if let Ok(httparse::Status::Complete(len)) = response.parse(&reply) {
                let body = response
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                    .and_then(|h| std::str::from_utf8(h.value).ok()?.parse::<usize>().ok())
                    .unwrap_or(0);
                let line = reply.iter().position(|b| *b == b'\n').unwrap_or(0) + 1;
                if reply.len() >= len + body {
                    break (line, len + body);
                }
            }
            if upstream.read_buf(&mut reply).await? == 0 {
                return Ok(());
            }
        };
        // The status line and headers as the app sent them, with the
        // request id added after the status line.
        out.clear();
        if headermap {
            if !respond_map(&reply[..response_len], &mut out) {
                return Ok(());
            }
        } else {
            out.extend_from_slice(&reply[..status_line_end]);
            out.extend_from_slice(b"x-request-id: floor\r\n");
            out.extend_from_slice(&reply[status_line_end..response_len]);
        }
        client.write_all(&out).await?;
    }
}

/// What the floor does not do, it refuses: requests with a body (framing
/// them is the real proxy's work) and `HEAD` (a `Content-Length` with no
/// body after it).
const OUT_OF_SCOPE: &[u8] =
    b"HTTP/1.1 501 Not Implemented\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";

fn within_scope(request: &httparse::Request<'_, '_>) -> bool {
    request.method != Some("HEAD")
        && request.headers.iter().all(|h| {
            !(h.name.eq_ignore_ascii_case("transfer-encoding")
                || (h.name.eq_ignore_ascii_case("content-length") && h.value != b"0"))
        })
}

/// Writes the head to send to the app into `out`, or a 401 to send to the
/// client (returning `false`).
async fn rewrite(
    request: &httparse::Request<'_, '_>,
    verifier: &Verifier,
    forwarded_for: &str,
    out: &mut Vec<u8>,
) -> bool {
    let token = request
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("authorization"))
        .and_then(|h| std::str::from_utf8(h.value).ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let user = match token {
        Some(token) => verifier.verify(token).await.ok(),
        None => None,
    };
    let Some(user) = user else {
        out.extend_from_slice(b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\n\r\n");
        return false;
    };
    let mut id = uuid::Uuid::encode_buffer();
    let id = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut id);
    out.extend_from_slice(request.method.unwrap_or("GET").as_bytes());
    out.push(b' ');
    out.extend_from_slice(request.path.unwrap_or("/").as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for header in request.headers.iter() {
        let name = header.name;
        let skip = [
            "authorization",
            "connection",
            "keep-alive",
            "x-user-id",
            "x-request-id",
        ]
        .iter()
        .any(|n| name.eq_ignore_ascii_case(n));
        if !skip {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(header.value);
            out.extend_from_slice(b"\r\n");
        }
    }
    for (name, value) in [
        ("x-user-id", user.user_id.as_str()),
        ("x-forwarded-for", forwarded_for),
        ("x-request-id", id),
    ] {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    true
}

/// Builds a `HeaderMap` as hyper does: one `Bytes` for the head, each value
/// a slice of it.
fn header_map(parsed: &[httparse::Header<'_>], base: &[u8], head: &Bytes) -> Option<HeaderMap> {
    let mut map = HeaderMap::with_capacity(parsed.len());
    for header in parsed {
        let name = HeaderName::from_bytes(header.name.as_bytes()).ok()?;
        let value = HeaderValue::from_maybe_shared(slice_of(base, head, header.value)).ok()?;
        map.append(name, value);
    }
    Some(map)
}

/// `part` of `base`, as the same range of `head` (a copy of `base`).
fn slice_of(base: &[u8], head: &Bytes, part: &[u8]) -> Bytes {
    let start = part.as_ptr() as usize - base.as_ptr() as usize;
    head.slice(start..start + part.len())
}

fn encode(map: &HeaderMap, out: &mut Vec<u8>) {
    for (name, value) in map {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// [`rewrite`] through a `HeaderMap` and the proxy's own header steps.
async fn rewrite_map(
    request: &httparse::Request<'_, '_>,
    head: &[u8],
    verifier: &Verifier,
    forwarded_for: &HeaderValue,
    out: &mut Vec<u8>,
) -> bool {
    let base = head;
    let head = Bytes::copy_from_slice(head);
    let refused = |out: &mut Vec<u8>| {
        out.extend_from_slice(b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\n\r\n");
        false
    };
    let Some(mut map) = header_map(request.headers, base, &head) else {
        return refused(out);
    };
    let method = Method::from_bytes(request.method.unwrap_or("GET").as_bytes()).expect("method");
    let path = request.path.unwrap_or("/");
    let Ok(uri) = Uri::from_maybe_shared(slice_of(base, &head, path.as_bytes())) else {
        return refused(out);
    };
    if retainwise_proxy::path::check_target(&method, Version::HTTP_11, &uri).is_err() {
        return refused(out);
    }
    let request_id = headers::request_id(&map);
    headers::strip_hop_by_hop(&mut map);
    headers::strip_client_identity(&mut map);
    let user = match headers::find_credential(&map) {
        Credential::Bearer(token) => verifier.verify(token).await.ok(),
        _ => None,
    };
    let Some(user) = user else {
        return refused(out);
    };
    headers::strip_credentials(&mut map);
    map.insert(
        USER_ID,
        HeaderValue::from_str(&user.user_id).expect("visible ASCII"),
    );
    headers::append_forwarded_for(&mut map, forwarded_for);
    map.insert(REQUEST_ID, request_id);
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(uri.path_and_query().map_or("/", |p| p.as_str()).as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    encode(&map, out);
    true
}

/// The response through a `HeaderMap`: hop-by-hop fields removed, a
/// request id added (a constant: the cost is the header's, not the id's),
/// encoded again. `false`: the response cannot be read; the connection
/// closes.
fn respond_map(reply: &[u8], out: &mut Vec<u8>) -> bool {
    let reply = Bytes::copy_from_slice(reply);
    let mut parsed = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut parsed);
    let Ok(httparse::Status::Complete(len)) = response.parse(&reply) else {
        return false;
    };
    let Some(mut map) = header_map(response.headers, &reply, &reply) else {
        return false;
    };
    headers::strip_hop_by_hop(&mut map);
    map.insert(REQUEST_ID, HeaderValue::from_static("floor"));
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(response.code.unwrap_or(200).to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(response.reason.unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    encode(&map, out);
    out.extend_from_slice(&reply[len..]);
    true
}
