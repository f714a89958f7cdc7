//! The request pipeline, in the order it runs:
//!
//! check target → strip hop-by-hop → strip client identity → authenticate →
//! rewrite headers → forward → record.
//!
//! Each step says why it sits where it does.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use http::header::{HOST, HeaderValue};
use http::{Request, Response, Version};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use crate::error::{Body, ProxyError};
use crate::forward::Upstream;
use crate::headers::{self, Credential, REQUEST_ID, USER_ID};
use crate::keystore::RETRY_AFTER;
use crate::metrics as m;
use crate::path::{PublicPaths, check_target};
use crate::verify::{Verifier, VerifyError};

/// What the proxy needs to handle a request; shared by all connections.
#[derive(Debug)]
pub struct Pipeline {
    pub verifier: Verifier,
    pub upstream: Upstream,
    pub public_paths: PublicPaths,
    pub forward_credentials: bool,
    pub metrics: Arc<m::HotMetrics>,
}

/// How authentication ended, for the log line and the metric.
#[derive(Debug)]
enum Decision {
    /// Not reached yet.
    None,
    /// The request failed before authentication, for this reason.
    Failed(&'static str),
    Public,
    Allowed(String),
    Rejected(&'static str),
    Unavailable,
}

impl Pipeline {
    /// Handles one request; never fails, every error becomes a response.
    pub async fn handle(&self, peer: SocketAddr, request: Request<Incoming>) -> Response<Body> {
        let started = Instant::now();
        let request_id = headers::request_id(request.headers());
        let method = request.method().clone();
        // Logged without the query: query strings carry tokens in some clients.
        let path = request.uri().path().to_owned();
        self.metrics.in_flight.increment(1.0);

        let mut decision = Decision::None;
        let mut response = match self.run(peer, &request_id, request, &mut decision).await {
            Ok(response) => response,
            Err(err) => {
                if matches!(decision, Decision::None) {
                    decision = Decision::Failed(err.reason());
                }
                err.into_response()
            }
        };
        response
            .headers_mut()
            .insert(REQUEST_ID, request_id.clone());

        self.metrics.in_flight.decrement(1.0);
        self.record(&request_id, &method, &path, &response, &decision, started);
        response
    }

    async fn run(
        &self,
        peer: SocketAddr,
        request_id: &HeaderValue,
        mut request: Request<Incoming>,
        decision: &mut Decision,
    ) -> Result<Response<Body>, ProxyError> {
        // 1. Ambiguous targets first: whether a path is public is only a
        //    sound question when proxy and app read the path the same way.
        check_target(request.method(), request.version(), request.uri())
            .map_err(ProxyError::BadTarget)?;

        // 2. Hop-by-hop headers belong to the client's connection; removing
        //    them before anything else reads headers means a header named in
        //    `Connection` is gone for every later step, as RFC 9110 intends.
        headers::strip_hop_by_hop(request.headers_mut());

        // 3. Client-supplied identity goes before authentication, on every
        //    path, so no branch below can forget it.
        headers::strip_client_identity(request.headers_mut());

        // 4. Authenticate. Public paths skip the token but not steps 1-3.
        let user_id = if self.public_paths.is_public(request.uri().path()) {
            *decision = Decision::Public;
            None
        } else {
            match self.authenticate(request.headers()).await {
                Ok(user_id) => {
                    *decision = Decision::Allowed(user_id.clone());
                    Some(user_id)
                }
                Err(err) => {
                    *decision = match err {
                        ProxyError::KeysUnavailable { .. } => Decision::Unavailable,
                        ref other => Decision::Rejected(other.reason()),
                    };
                    return Err(err);
                }
            }
        };

        // 5. Rewrite what goes upstream, in one place.
        let headers = request.headers_mut();
        if !self.forward_credentials {
            headers::strip_credentials(headers);
        }
        if let Some(user_id) = user_id {
            let value =
                HeaderValue::from_str(&user_id).expect("sub was checked to be visible ASCII");
            headers.insert(USER_ID, value);
        }
        headers::append_forwarded_for(headers, peer.ip());
        headers.insert(REQUEST_ID, request_id.clone());
        if request.version() == Version::HTTP_2 && !request.headers().contains_key(HOST) {
            // h2 carries the host as :authority; the app speaks HTTP/1.1 and
            // reads Host.
            if let Some(authority) = request.uri().authority()
                && let Ok(value) = HeaderValue::from_str(authority.as_str())
            {
                request.headers_mut().insert(HOST, value);
            }
        }

        // 6. Forward, and clean the way back.
        let mut response = self.upstream.send(request).await?;
        headers::strip_hop_by_hop(response.headers_mut());
        Ok(response.map(|body: Incoming| body.boxed()))
    }

    async fn authenticate(&self, headers: &http::HeaderMap) -> Result<String, ProxyError> {
        let token = match headers::find_credential(headers) {
            Credential::Token(token, _) => token,
            Credential::None => return Err(ProxyError::MissingToken),
            Credential::Ambiguous => return Err(ProxyError::AmbiguousCredentials),
            Credential::MalformedBearer => {
                return Err(ProxyError::InvalidToken(
                    crate::verify::Rejection::Malformed,
                ));
            }
        };
        match self.verifier.verify(&token).await {
            Ok(identity) => Ok(identity.user_id),
            Err(VerifyError::Invalid(rejection)) => Err(ProxyError::InvalidToken(rejection)),
            Err(VerifyError::KeysUnavailable) => Err(ProxyError::KeysUnavailable {
                retry_after: RETRY_AFTER,
            }),
        }
    }
}

impl Pipeline {
    /// The one place every request's outcome is written: metrics and the
    /// access log line.
    fn record(
        &self,
        request_id: &HeaderValue,
        method: &http::Method,
        path: &str,
        response: &Response<Body>,
        decision: &Decision,
        started: Instant,
    ) {
        let status = response.status();
        let elapsed = started.elapsed();
        self.metrics.requests(status).increment(1);
        self.metrics.request_duration.record(elapsed.as_secs_f64());
        let (result, reason) = match decision {
            Decision::None => ("", "-"),
            Decision::Failed(reason) => ("", *reason),
            Decision::Public => ("public", "public_path"),
            Decision::Allowed(_) => ("allowed", "valid_token"),
            Decision::Rejected(reason) => ("rejected", *reason),
            Decision::Unavailable => ("unavailable", "keys_unavailable"),
        };
        match decision {
            Decision::Allowed(_) => self.metrics.allowed.increment(1),
            Decision::Public => self.metrics.public.increment(1),
            _ if !result.is_empty() => {
                metrics::counter!(m::AUTH_DECISIONS, "result" => result, "reason" => reason)
                    .increment(1);
            }
            _ => {}
        }
        let request_id = request_id.to_str().unwrap_or("-");
        let latency_ms = elapsed.as_secs_f64() * 1000.0;
        // An allowed request logs who; every other one logs why not.
        let (user_id, reason) = match decision {
            Decision::Allowed(user_id) => (Some(user_id.as_str()), None),
            _ => (None, Some(reason)),
        };
        tracing::info!(
            message = "request",
            request_id,
            method = %method,
            path,
            status = status.as_u16(),
            latency_ms,
            user_id,
            reason,
        );
    }
}
