//! `start_jwks()`: a JWKS server over real HTTPS with a CA made for the run
//! (its PEM is what the proxy's `PROXY_JWKS_CA_FILE` points at). The keys it
//! publishes can be changed while the proxy runs, and it counts requests.
//! Adapted from the proxy's own harness (`proxy/tests/support/jwks.rs`).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

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
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use super::TempDir;
use super::keys::TestKey;

/// A JWKS document listing these keys.
pub fn jwks_of(keys: &[&TestKey]) -> Value {
    json!({ "keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>() })
}

#[derive(Debug)]
struct State {
    doc: Mutex<Value>,
    fetches: AtomicUsize,
}

/// A running HTTPS JWKS server. Dropping it stops it.
#[derive(Debug)]
pub struct JwksServer {
    addr: SocketAddr,
    state: Arc<State>,
    accept: JoinHandle<()>,
    ca_file: PathBuf,
    _dir: TempDir,
}

/// Starts an HTTPS JWKS server publishing `keys`.
pub async fn start_jwks(keys: &[&TestKey]) -> JwksServer {
    let dir = TempDir::new();
    let (acceptor, ca_pem) = tls_acceptor();
    let ca_file = dir.write("jwks-ca.pem", &ca_pem);
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    let state = Arc::new(State {
        doc: Mutex::new(jwks_of(keys)),
        fetches: AtomicUsize::new(0),
    });
    let accept = tokio::spawn(accept_loop(listener, acceptor, state.clone()));
    JwksServer {
        addr,
        state,
        accept,
        ca_file,
        _dir: dir,
    }
}

impl JwksServer {
    /// The JWKS URL (`CLERK_JWKS_URL`).
    pub fn url(&self) -> String {
        format!("https://{}/.well-known/jwks.json", self.addr)
    }

    /// Path of the CA PEM file (`PROXY_JWKS_CA_FILE`).
    pub fn ca_file(&self) -> String {
        self.ca_file.to_str().expect("utf-8 path").to_owned()
    }

    /// Requests received so far.
    pub fn fetches(&self) -> usize {
        self.state.fetches.load(Ordering::SeqCst)
    }

    /// Publishes exactly these keys from now on.
    pub fn serve(&self, keys: &[&TestKey]) {
        *self.state.doc.lock().expect("doc lock") = jwks_of(keys);
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn accept_loop(listener: TcpListener, tls: TlsAcceptor, state: Arc<State>) {
    loop {
        let Ok((tcp, _peer)) = listener.accept().await else {
            continue;
        };
        let tls = tls.clone();
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| answer(state.clone(), request));
            if let Ok(stream) = tls.accept(tcp).await {
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            }
        });
    }
}

async fn answer(
    state: Arc<State>,
    _request: Request<Incoming>,
) -> Result<Response<BoxBody<Bytes, Infallible>>, Infallible> {
    state.fetches.fetch_add(1, Ordering::SeqCst);
    let doc = state.doc.lock().expect("doc lock").to_string();
    Ok(Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(doc)).boxed())
        .expect("response builds"))
}

/// A CA made for this run and a `localhost`/`127.0.0.1` certificate it signed.
fn tls_acceptor() -> (TlsAcceptor, String) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "retainwise e2e test CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
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
