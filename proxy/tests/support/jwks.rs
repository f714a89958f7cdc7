//! `start_jwks()`: a JWKS server over real HTTPS, with a CA made for the
//! test (its PEM is what `PROXY_JWKS_CA_FILE` points at). What it answers
//! can be switched while the proxy runs, and it can go down and come back
//! on the same port. It counts the requests it receives.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpSocket};
use tokio::task::{AbortHandle, JoinHandle};
use tokio_rustls::TlsAcceptor;

use super::TempDir;
use super::keys::TestKey;

/// What the JWKS server answers.
#[derive(Debug, Clone)]
pub enum JwksMode {
    /// 200 with this JSON document.
    Keys(Value),
    /// This status, with a short text body.
    Status(u16),
    /// 200, `application/json`, random bytes.
    Garbage,
    /// 200, `text/html`.
    NotJson,
    /// 200 with this JWKS padded past 1 MiB, with a `Content-Length`.
    Huge(Value),
    /// The same, streamed in chunks without a `Content-Length`.
    HugeChunked(Value),
    /// Waits this long, then answers 200 with this JWKS.
    Slow(Duration, Value),
    /// 302 to this location.
    Redirect(String),
}

/// A JWKS document listing these keys.
pub fn jwks_of(keys: &[&TestKey]) -> Value {
    json!({ "keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>() })
}

#[derive(Debug)]
struct State {
    mode: Mutex<JwksMode>,
    fetches: AtomicUsize,
    connections: Mutex<Vec<AbortHandle>>,
}

/// A running JWKS server. Dropping it stops it.
pub struct JwksServer {
    addr: SocketAddr,
    tls: Option<TlsAcceptor>,
    state: Arc<State>,
    accept: Mutex<Option<JoinHandle<()>>>,
    ca_pem: Option<String>,
    ca_file: Option<PathBuf>,
    _dir: TempDir,
}

/// Starts an HTTPS JWKS server publishing `keys`.
pub async fn start_jwks(keys: &[&TestKey]) -> JwksServer {
    JwksServer::start(true, JwksMode::Keys(jwks_of(keys))).await
}

/// Starts a plain-HTTP JWKS server (only as a redirect target the proxy
/// must refuse).
pub async fn start_plain_jwks(keys: &[&TestKey]) -> JwksServer {
    JwksServer::start(false, JwksMode::Keys(jwks_of(keys))).await
}

impl std::fmt::Debug for JwksServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksServer")
            .field("url", &self.url())
            .field("fetches", &self.fetches())
            .finish_non_exhaustive()
    }
}

impl JwksServer {
    async fn start(tls: bool, mode: JwksMode) -> Self {
        let dir = TempDir::new();
        let (acceptor, ca_pem, ca_file) = if tls {
            let (acceptor, ca_pem) = tls_acceptor();
            let ca_file = dir.write("jwks-ca.pem", &ca_pem);
            (Some(acceptor), Some(ca_pem), Some(ca_file))
        } else {
            (None, None, None)
        };
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(State {
            mode: Mutex::new(mode),
            fetches: AtomicUsize::new(0),
            connections: Mutex::new(Vec::new()),
        });
        let accept = tokio::spawn(accept_loop(listener, acceptor.clone(), state.clone()));
        Self {
            addr,
            tls: acceptor,
            state,
            accept: Mutex::new(Some(accept)),
            ca_pem,
            ca_file,
            _dir: dir,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The JWKS URL (`CLERK_JWKS_URL`).
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}/.well-known/jwks.json", self.addr)
    }

    /// Path of the CA PEM file (`PROXY_JWKS_CA_FILE`).
    pub fn ca_file(&self) -> String {
        self.ca_file
            .as_ref()
            .expect("an HTTPS JWKS server has a CA file")
            .to_str()
            .expect("utf-8 path")
            .to_owned()
    }

    pub fn ca_pem(&self) -> &str {
        self.ca_pem
            .as_deref()
            .expect("an HTTPS JWKS server has a CA")
    }

    /// Requests received so far (all of them, whatever was answered).
    pub fn fetches(&self) -> usize {
        self.state.fetches.load(Ordering::SeqCst)
    }

    /// Publishes exactly these keys from now on.
    pub fn serve(&self, keys: &[&TestKey]) {
        self.set_mode(JwksMode::Keys(jwks_of(keys)));
    }

    pub fn set_mode(&self, mode: JwksMode) {
        *self.state.mode.lock().expect("mode lock") = mode;
    }

    /// Closes the listener and every open connection: connects are refused.
    pub async fn go_down(&self) {
        let accept = self.accept.lock().expect("accept lock").take();
        if let Some(accept) = accept {
            accept.abort();
            let _ = accept.await;
        }
        for connection in self.state.connections.lock().expect("conn lock").drain(..) {
            connection.abort();
        }
    }

    /// Listens again on the same port.
    pub async fn come_back(&self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        let listener = loop {
            let socket = TcpSocket::new_v4().expect("socket");
            socket.set_reuseaddr(true).expect("SO_REUSEADDR");
            match socket.bind(self.addr).and_then(|()| socket.listen(128)) {
                Ok(listener) => break listener,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("JWKS server cannot listen on {} again: {e}", self.addr),
            }
        };
        let accept = tokio::spawn(accept_loop(listener, self.tls.clone(), self.state.clone()));
        *self.accept.lock().expect("accept lock") = Some(accept);
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        if let Some(accept) = self.accept.lock().expect("accept lock").take() {
            accept.abort();
        }
        for connection in self.state.connections.lock().expect("conn lock").drain(..) {
            connection.abort();
        }
    }
}

async fn accept_loop(listener: TcpListener, tls: Option<TlsAcceptor>, state: Arc<State>) {
    loop {
        let Ok((tcp, _peer)) = listener.accept().await else {
            continue;
        };
        let tls = tls.clone();
        let handler_state = state.clone();
        let connection = tokio::spawn(async move {
            let service = service_fn(move |request| answer(handler_state.clone(), request));
            let builder = http1::Builder::new();
            match tls {
                Some(acceptor) => {
                    if let Ok(stream) = acceptor.accept(tcp).await {
                        let _ = builder
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    }
                }
                None => {
                    let _ = builder.serve_connection(TokioIo::new(tcp), service).await;
                }
            }
        });
        let mut connections = state.connections.lock().expect("conn lock");
        connections.retain(|c| !c.is_finished());
        connections.push(connection.abort_handle());
    }
}

type Body = BoxBody<Bytes, Infallible>;

fn full(status: u16, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(body.into()).boxed())
        .expect("response builds")
}

/// The JWKS with a `padding` member that takes it past 1 MiB.
fn padded(jwks: &Value) -> Vec<u8> {
    let mut doc = jwks.clone();
    doc["padding"] = json!("x".repeat(1536 * 1024));
    serde_json::to_vec(&doc).expect("JWKS serialises")
}

async fn answer(
    state: Arc<State>,
    _request: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    state.fetches.fetch_add(1, Ordering::SeqCst);
    let mode = state.mode.lock().expect("mode lock").clone();
    let response = match mode {
        JwksMode::Keys(doc) => full(200, "application/json", doc.to_string()),
        JwksMode::Status(status) => full(status, "text/plain", "JWKS server error"),
        JwksMode::Garbage => {
            let bytes: Vec<u8> = (0..4096).map(|_| rand::random::<u8>()).collect();
            full(200, "application/json", bytes)
        }
        JwksMode::NotJson => full(200, "text/html", "<html><body>Bad gateway</body></html>"),
        JwksMode::Huge(doc) => full(200, "application/json", padded(&doc)),
        JwksMode::HugeChunked(doc) => {
            let bytes = Bytes::from(padded(&doc));
            let (mut sender, body) = http_body_util::channel::Channel::<Bytes, Infallible>::new(4);
            tokio::spawn(async move {
                let mut offset = 0;
                while offset < bytes.len() {
                    let end = (offset + 64 * 1024).min(bytes.len());
                    if sender.send_data(bytes.slice(offset..end)).await.is_err() {
                        return;
                    }
                    offset = end;
                }
            });
            Response::builder()
                .status(200)
                .header("content-type", "application/json")
                .body(body.boxed())
                .expect("response builds")
        }
        JwksMode::Slow(delay, doc) => {
            tokio::time::sleep(delay).await;
            full(200, "application/json", doc.to_string())
        }
        JwksMode::Redirect(location) => Response::builder()
            .status(302)
            .header("location", location)
            .body(Full::new(Bytes::new()).boxed())
            .expect("response builds"),
    };
    Ok(response)
}

/// A CA made for this server and a TLS acceptor with a certificate it issued
/// for `localhost` and `127.0.0.1`. Returns the CA's PEM.
fn tls_acceptor() -> (TlsAcceptor, String) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "retainwise-proxy test CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = rcgen::KeyPair::generate().expect("CA key");
    let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
    let issuer = Issuer::new(ca_params, ca_key);

    let mut leaf_params =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .expect("leaf params");
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let leaf_key = rcgen::KeyPair::generate().expect("leaf key");
    let leaf_cert = leaf_params
        .signed_by(&leaf_key, &issuer)
        .expect("leaf certificate");

    let chain: Vec<CertificateDer<'static>> = vec![leaf_cert.der().clone()];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("server certificate");
    (TlsAcceptor::from(Arc::new(config)), ca_cert.pem())
}
