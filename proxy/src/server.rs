//! Listeners, connections and the shutdown sequence.
//!
//! On SIGTERM or SIGINT: readiness turns 503 at once (so the load balancer
//! stops sending), the data listener stops accepting, in-flight requests
//! get up to the drain time to finish, then the process exits 0.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use retainwise_linger::{Linger, LingeringStream};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::admin::{self, Admin};
use crate::conn::{ClientTimeouts, ConnState, TimedIo, supervise};
use crate::csrf::CsrfPolicy;
use crate::fastpath;
use crate::fetch::KeySource;
use crate::forward::Upstream;
use crate::jwks::VerifyingKey;
use crate::keystore::KeyStore;
use crate::metrics as m;
use crate::park::{Http1, PARK_AFTER, wait_parked};
use crate::pipeline::{Peer, Pipeline};
use crate::settings::Settings;
use crate::verify::Verifier;

/// Request heads beyond this get 431: a real request head is a few KiB,
/// and a session token well under 16 KiB.
const MAX_HEADER_BYTES: usize = 64 * 1024;

/// Startup failures: a setting that only shows its problem when used
/// (unreadable CA file, bad PEM), or a port already taken.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("setting {0}: {1}")]
    Setting(&'static str, String),
    #[error("cannot listen on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    #[error("metrics: {0}")]
    Metrics(String),
}

impl StartError {
    /// Settings problems are usage errors (exit 2); the rest are runtime (1).
    pub fn exit_code(&self) -> u8 {
        match self {
            StartError::Setting(..) => 2,
            _ => 1,
        }
    }
}

/// Builds the key store from the configured sources.
pub fn key_store(settings: &Settings) -> Result<KeyStore, StartError> {
    let keys = &settings.keys;
    let pem_key = match &keys.jwt_key_pem {
        Some(pem) => Some(
            VerifyingKey::from_pem(pem).map_err(|err| StartError::Setting("CLERK_JWT_KEY", err))?,
        ),
        None => None,
    };
    let source = if let Some(url) = &keys.jwks_url {
        let ca = match &keys.jwks_ca_file {
            Some(path) => Some(std::fs::read(path).map_err(|err| {
                StartError::Setting("PROXY_JWKS_CA_FILE", format!("{}: {err}", path.display()))
            })?),
            None => None,
        };
        Some(
            KeySource::url(url.clone(), ca.as_deref(), settings.jwks_fetch_timeout)
                .map_err(|err| StartError::Setting("PROXY_JWKS_CA_FILE", err))?,
        )
    } else {
        keys.jwks_file.clone().map(KeySource::File)
    };
    Ok(KeyStore::new(
        source,
        pem_key,
        settings.jwks_cache_max_age,
        settings.jwks_min_refresh_interval,
    ))
}

/// Runs the proxy until a shutdown signal, then drains.
pub async fn run(settings: Settings) -> Result<(), StartError> {
    let metrics = crate::metrics::install().map_err(StartError::Metrics)?;
    crate::metrics::spawn_upkeep(metrics.clone(), crate::metrics::UPKEEP_INTERVAL);
    let keys = Arc::new(key_store(&settings)?);
    let upstream = Upstream::new(
        &settings.upstream,
        settings.upstream_connect_timeout,
        settings.upstream_timeout,
    );
    let hot_metrics = Arc::new(crate::metrics::HotMetrics::register());
    let pipeline = Arc::new(Pipeline {
        verifier: Verifier::new(
            Arc::clone(&keys),
            settings.claims.clone(),
            settings.token_cache_size,
            Arc::clone(&hot_metrics),
        ),
        upstream: upstream.clone(),
        public_paths: settings.public_paths.clone(),
        forward_credentials: settings.forward_credentials,
        cors: settings.cors.clone(),
        csrf: CsrfPolicy::new(
            settings
                .cors
                .iter()
                .flat_map(|policy| policy.origins())
                .chain(
                    settings
                        .claims
                        .authorized_parties
                        .iter()
                        .flatten()
                        .map(String::as_str),
                ),
        ),
        body_idle_timeout: settings.body_idle_timeout,
        access_log: settings.access_log,
        metrics: hot_metrics,
    });

    let data_listener = bind(settings.listen).await?;
    let admin_listener = bind(settings.admin_listen).await?;
    log_listening("data", &data_listener);
    log_listening("admin", &admin_listener);

    tokio::spawn(Arc::clone(&keys).run_refresh_loop(settings.jwks_cache_ttl));

    let draining = Arc::new(AtomicBool::new(false));
    let admin = Arc::new(Admin {
        keys,
        upstream,
        metrics,
        draining: Arc::clone(&draining),
    });
    tokio::spawn(admin::serve(admin_listener, admin));

    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        let signal = shutdown_signal().await;
        // Readiness first: the load balancer must see 503 before the
        // listener goes away, or it keeps sending to a closed port.
        draining.store(true, Ordering::SeqCst);
        tracing::info!(signal, "shutting down: readiness is now 503, draining");
        let _ = stop_tx.send(true);
    });

    serve_data(data_listener, pipeline, &settings, stop_rx).await;
    tracing::info!("stopped");
    Ok(())
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|err| StartError::Bind(addr, err))
}

fn log_listening(listener: &'static str, socket: &TcpListener) {
    if let Ok(addr) = socket.local_addr() {
        tracing::info!(message = "listening", listener, addr = %addr);
    }
}

async fn serve_data(
    listener: TcpListener,
    pipeline: Arc<Pipeline>,
    settings: &Settings,
    mut stop: watch::Receiver<bool>,
) {
    let openings = Arc::new(Openings::new());
    let limits = ClientTimeouts {
        header_read: settings.header_read_timeout,
        idle: settings.idle_timeout,
        body_idle: settings.body_idle_timeout,
        park_after: PARK_AFTER,
    };
    // Every connection task holds a clone; `recv` returns `None` once all
    // of them have ended, which is what the drain waits for.
    let (alive, mut all_closed) = mpsc::channel::<()>(1);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        // Usually out of file descriptors: back off instead
                        // of spinning on the same error.
                        tracing::warn!(error = %err, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let state = ConnState::new();
                let pipeline = Arc::clone(&pipeline);
                let conn_state = Arc::clone(&state);
                let peer = Arc::new(Peer::new(peer));
                let fast_pipeline = Arc::clone(&pipeline);
                let fast_peer = Arc::clone(&peer);
                let service = service_fn(move |request| {
                    let pipeline = Arc::clone(&pipeline);
                    let conn_state = Arc::clone(&conn_state);
                    let peer = Arc::clone(&peer);
                    // Boxed: hyper keeps a box the size of this future for
                    // every connection's whole life (its `in_flight` slot),
                    // about 3 KiB unboxed; boxed, the 3 KiB exist only while
                    // a request is being served.
                    Box::pin(async move {
                        Ok::<_, Infallible>(pipeline.serve(&conn_state, &peer, request).await)
                    })
                });
                let mut stop = stop.clone();
                let alive = alive.clone();
                let openings = Arc::clone(&openings);
                tokio::spawn(async move {
                    let accepted = Instant::now();
                    // The first request head is owed from the accept, as in
                    // `supervise`; a drain closes a connection that has not
                    // sent a byte yet.
                    let opening = tokio::select! {
                        opening = Opening::peek(&stream) => opening,
                        () = tokio::time::sleep_until(accepted + limits.header_read) => {
                            metrics::counter!(m::CLIENT_TIMEOUTS, "kind" => "header_read").increment(1);
                            return;
                        }
                        _ = stop.wait_for(|stopping| *stopping) => return,
                    };
                    let stream = LingeringStream::new(stream, Linger::CLIENT_FACING);
                    // Each connection type in its own box, so that an
                    // HTTP/1.1 connection's task is not the size of an
                    // HTTP/2 one.
                    match opening {
                        Opening::Http1 => serve_http1(stream, &openings.http1, service, &fast_pipeline, &fast_peer, &state, limits, &mut stop).await,
                        Opening::Other => {
                            let io = TokioIo::new(TimedIo::new(stream, Arc::clone(&state), limits.body_idle));
                            let connection = Box::pin(openings.any.serve_connection(io, service).into_owned());
                            supervise(connection, |c| c.get_mut().as_mut().graceful_shutdown(), &state, limits, &mut stop).await;
                        }
                    }
                    drop(alive);
                });
            }
            _ = stop.changed() => break,
        }
    }
    drop(listener);
    drop(alive);
    tokio::select! {
        _ = all_closed.recv() => tracing::info!("all connections drained"),
        () = tokio::time::sleep(settings.drain_timeout) => {
            tracing::warn!(drain_timeout_secs = settings.drain_timeout.as_secs(), "drain time over; closing remaining connections");
        }
    }
}

/// Serves an HTTP/1.1 connection: the fast path's requests by the fast
/// path ([`crate::fastpath`]), the rest by hyper, and parked while it is
/// idle (see [`crate::park`]). Each time the client sends again after a
/// park, the fast path reads first, and hyper takes over with a new
/// connection on the same socket and [`ConnState`] at the first request
/// the fast path does not take.
#[allow(clippy::too_many_arguments)]
async fn serve_http1<S, B>(
    stream: LingeringStream,
    builder: &http1::Builder,
    service: S,
    pipeline: &Pipeline,
    peer: &Peer,
    state: &Arc<ConnState>,
    limits: ClientTimeouts,
    stop: &mut watch::Receiver<bool>,
) where
    S: hyper::service::HttpService<hyper::body::Incoming, ResBody = B> + Clone + Unpin,
    S::Future: Unpin,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: hyper::body::Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    state.set_parkable();
    let mut io = TimedIo::new(stream, Arc::clone(state), limits.body_idle);
    loop {
        if fastpath::serve(&mut io, pipeline, peer, state, &limits, stop).await
            == fastpath::Outcome::Closed
        {
            return;
        }
        let connection = Box::pin(Http1::new(
            builder.serve_connection(TokioIo::new(io), service.clone()),
        ));
        let Some(Ok(parts)) = supervise(
            connection,
            |c| c.get_mut().graceful_shutdown(),
            state,
            limits,
            stop,
        )
        .await
        else {
            return;
        };
        // Ended by the client, by a `Connection: close`, or with bytes
        // read past the last request (none, when parked): dropping the
        // socket closes it, lingering.
        let hyper::server::conn::http1::Parts {
            io: ended,
            read_buf,
            ..
        } = parts;
        if !ended.inner().parked() || !read_buf.is_empty() {
            return;
        }
        // Only the socket is kept: the empty `read_buf` still holds hyper's
        // whole 8 KiB read buffer.
        drop(read_buf);
        let stream = ended.into_inner().into_inner();
        if !wait_parked(&stream, state, &limits, stop).await {
            return;
        }
        state.unpark();
        io = TimedIo::new(stream, Arc::clone(state), limits.body_idle);
    }
}

/// What a new connection's first bytes say it speaks, read with
/// `MSG_PEEK` so that they stay in the socket for hyper.
///
/// Peeking, and serving HTTP/1.1 with hyper's own HTTP/1 connection rather
/// than hyper-util's auto-detecting one, saves about 12 KiB per connection
/// for its whole life (measured with heaptrack at 3,000 idle keep-alive
/// connections, and as RSS by `scripts/bench-proxy.sh`): the detection
/// hands its 24 sniffed bytes to hyper as a separate first read, which
/// makes hyper grow its 8 KiB read buffer to 16 KiB (it reserves a full
/// 8 KiB again whenever less is free), and the auto connection is sized
/// for HTTP/2 as well.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Opening {
    /// Not the HTTP/2 connection preface (RFC 9113 section 3.4).
    Http1,
    /// The preface, a beginning of it, the end of the stream or an error:
    /// hyper-util's detection reads on and decides (h2c with prior
    /// knowledge, or HTTP/1.1 after all).
    Other,
}

/// The HTTP/2 client connection preface (RFC 9113 section 3.4).
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

impl Opening {
    async fn peek(stream: &tokio::net::TcpStream) -> Self {
        let mut first = [0u8; H2_PREFACE.len()];
        match stream.peek(&mut first).await {
            Ok(n) if n > 0 && first[..n] != H2_PREFACE[..n] => Opening::Http1,
            // Peeking again would return the same bytes at once; more of a
            // partial preface needs a real read, which the detection does.
            _ => Opening::Other,
        }
    }
}

/// The connection builders, configured once.
struct Openings {
    http1: http1::Builder,
    any: auto::Builder<TokioExecutor>,
}

impl Openings {
    fn new() -> Self {
        // hyper's header read timeout is off: since hyper 1.6 it also runs
        // while a keep-alive connection is idle. The head and idle bounds
        // are kept apart in `conn::supervise`.
        let mut http1 = http1::Builder::new();
        http1
            .timer(TokioTimer::new())
            .header_read_timeout(None)
            .max_buf_size(MAX_HEADER_BYTES);
        let mut any = auto::Builder::new(TokioExecutor::new());
        any.http1()
            .timer(TokioTimer::new())
            .header_read_timeout(None)
            .max_buf_size(MAX_HEADER_BYTES);
        any.http2()
            .timer(TokioTimer::new())
            .max_header_list_size(MAX_HEADER_BYTES as u32)
            .keep_alive_interval(Some(Duration::from_secs(30)));
        Openings { http1, any }
    }
}

async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; shutdown only by SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}
