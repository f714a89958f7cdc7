//! The hop to the app: a pooled HTTP/1.1 client with timeouts.
//!
//! hyper-util's legacy client has connect timeouts and pooling but no total
//! request timeout, so the wait for the response head is bounded here.
//! Bodies are never buffered: the request body streams to the app as it
//! arrives and the response body streams back the same way.

use std::time::Duration;

use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Request, Response, Uri, Version};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::error::{ProxyError, error_chain};
use crate::metrics as m;

/// Idle keep-alive connections to the app are closed after this; the app's
/// own idle timeout should be longer so the proxy is the one that closes.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Enough warm connections for bursts without holding file descriptors idle.
const POOL_MAX_IDLE_PER_HOST: usize = 256;

#[derive(Debug, Clone)]
pub struct Upstream {
    client: Client<HttpConnector, Incoming>,
    scheme: Scheme,
    authority: Authority,
    response_timeout: Duration,
}

impl Upstream {
    pub fn new(base: &Uri, connect_timeout: Duration, response_timeout: Duration) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(connect_timeout));
        connector.set_nodelay(true);
        connector.set_keepalive(Some(Duration::from_secs(60)));
        let client = Client::builder(TokioExecutor::new())
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .pool_max_idle_per_host(POOL_MAX_IDLE_PER_HOST)
            .build(connector);
        Upstream {
            client,
            scheme: base.scheme().cloned().unwrap_or(Scheme::HTTP),
            authority: base
                .authority()
                .cloned()
                .unwrap_or_else(|| Authority::from_static("127.0.0.1:3000")),
            response_timeout,
        }
    }

    /// `host:port` of the app, for the readiness probe.
    pub fn authority(&self) -> &Authority {
        &self.authority
    }

    /// Sends the request (already rewritten) and waits for the response head.
    pub async fn send(
        &self,
        mut request: Request<Incoming>,
    ) -> Result<Response<Incoming>, ProxyError> {
        let path = request
            .uri()
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        let mut parts = http::uri::Parts::default();
        parts.scheme = Some(self.scheme.clone());
        parts.authority = Some(self.authority.clone());
        parts.path_and_query = Some(path);
        *request.uri_mut() = Uri::from_parts(parts).map_err(|_| ProxyError::Upstream)?;
        // The app speaks HTTP/1.1 whatever the client spoke to us.
        *request.version_mut() = Version::HTTP_11;
        match tokio::time::timeout(self.response_timeout, self.client.request(request)).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(err)) => {
                let connect = err.is_connect();
                let kind = if connect { "connect" } else { "other" };
                metrics::counter!(m::UPSTREAM_ERRORS, "kind" => kind).increment(1);
                tracing::warn!(error = %error_chain(&err), kind, "upstream request failed");
                Err(if connect {
                    ProxyError::UpstreamConnect
                } else {
                    ProxyError::Upstream
                })
            }
            Err(_) => {
                metrics::counter!(m::UPSTREAM_ERRORS, "kind" => "timeout").increment(1);
                Err(ProxyError::UpstreamTimeout)
            }
        }
    }

    /// Whether a TCP connection to the app opens: readiness asks only that
    /// the app is there, not that its dependencies are healthy, so a
    /// database blip does not pull every proxy out of the load balancer.
    pub async fn reachable(&self, timeout: Duration) -> bool {
        let port = self.authority.port_u16().unwrap_or(80);
        let host = self
            .authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        matches!(
            tokio::time::timeout(timeout, tokio::net::TcpStream::connect((host, port))).await,
            Ok(Ok(_))
        )
    }
}
