//! The request pipeline, in the order it runs:
//!
//! check target → answer CORS preflights → strip hop-by-hop → strip client
//! identity → authenticate → rewrite headers → forward → apply CORS → record.
//!
//! Each step says why it sits where it does.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::header::{CONNECTION, HOST, HeaderValue};
use http::{Request, Response, Version};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use crate::conn::{ConnState, GuardedBody};
use crate::cors::{self, CorsPolicy};
use crate::csrf::CsrfPolicy;
use crate::error::{Body, ProxyError};
use crate::forward::{RequestBody, Upstream};
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
    pub cors: Option<CorsPolicy>,
    /// Origins a cookie-authenticated, state-changing request may come from.
    pub csrf: CsrfPolicy,
    /// `PROXY_BODY_IDLE_TIMEOUT`, for request bodies on their way to the app.
    pub body_idle_timeout: std::time::Duration,
    /// `PROXY_ACCESS_LOG`: whether [`Pipeline::record`] writes the line.
    pub access_log: bool,
    pub metrics: Arc<m::HotMetrics>,
}

/// The client at the other end of a connection, as the pipeline uses it.
#[derive(Debug, Clone)]
pub struct Peer {
    /// The peer's IP as an `X-Forwarded-For` element, formatted once.
    forwarded_for: HeaderValue,
}

impl Peer {
    pub fn new(addr: SocketAddr) -> Self {
        Peer {
            forwarded_for: headers::forwarded_for_value(addr.ip()),
        }
    }
}

/// A client request's body as the pipeline sees it: whether one follows
/// the head, and what is sent to the app.
pub trait ClientBody {
    /// `true` when no body byte follows the head.
    fn is_end_stream(&self) -> bool;
    /// The body on its way to the app, bounded by the body idle time.
    fn into_request_body(self, idle: Duration) -> RequestBody;
}

impl ClientBody for Incoming {
    fn is_end_stream(&self) -> bool {
        hyper::body::Body::is_end_stream(self)
    }

    fn into_request_body(self, idle: Duration) -> RequestBody {
        RequestBody::new(self, idle)
    }
}

/// The body of a request read by the HTTP/1.1 fast path
/// ([`crate::fastpath`]), which takes only requests without one.
#[derive(Debug, Clone, Copy)]
pub struct NoBody;

impl ClientBody for NoBody {
    fn is_end_stream(&self) -> bool {
        true
    }

    fn into_request_body(self, idle: Duration) -> RequestBody {
        RequestBody::empty(idle)
    }
}

/// The response type of the data listener: every body ends its request's
/// time in flight on the connection when hyper drops it.
pub type ConnResponse = Response<GuardedBody<Body>>;

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
    /// A CORS preflight, answered by the proxy.
    Preflight(bool),
}

impl Pipeline {
    /// Handles one request on a client connection, marking it in flight on
    /// the connection until its response has been written.
    pub async fn serve(
        &self,
        conn: &Arc<ConnState>,
        peer: &Peer,
        request: Request<Incoming>,
    ) -> ConnResponse {
        let guard = conn.request_started();
        self.handle(peer, request)
            .await
            .map(|body| GuardedBody::new(body, guard))
    }

    /// Handles one request; never fails, every error becomes a response.
    pub async fn handle<B: ClientBody>(&self, peer: &Peer, request: Request<B>) -> Response<Body> {
        let started = Instant::now();
        let request_id = headers::request_id(request.headers());
        let method = request.method().clone();
        // Logged without the query: query strings carry tokens in some clients.
        // Kept for the access line only: with it off, no copy a request.
        let path = self.access_log.then(|| request.uri().path().to_owned());
        let cors_origin = self
            .cors
            .as_ref()
            .and_then(|policy| policy.allowed_origin(request.headers()));
        // An answer the proxy gives before reading an HTTP/1 body says it
        // will close: the client then stops sending instead of finding out
        // from the closed socket (RFC 9112 §9.6).
        let has_body = request.version() < Version::HTTP_2 && !request.body().is_end_stream();
        self.metrics.in_flight.increment(1.0);

        let mut decision = Decision::None;
        let mut response = match self.run(peer, &request_id, request, &mut decision).await {
            Ok(response) => response,
            Err(err) => {
                if matches!(decision, Decision::None) {
                    decision = Decision::Failed(err.reason());
                }
                let mut response = err.into_response();
                if has_body {
                    response
                        .headers_mut()
                        .insert(CONNECTION, HeaderValue::from_static("close"));
                }
                response
            }
        };
        response
            .headers_mut()
            .insert(REQUEST_ID, request_id.clone());
        if self.cors.is_some() {
            cors::apply(response.headers_mut(), cors_origin);
        }

        self.metrics.in_flight.decrement(1.0);
        self.record(
            &request_id,
            &method,
            path.as_deref().unwrap_or_default(),
            &response,
            &decision,
            started,
        );
        response
    }

    async fn run<B: ClientBody>(
        &self,
        peer: &Peer,
        request_id: &HeaderValue,
        mut request: Request<B>,
        decision: &mut Decision,
    ) -> Result<Response<Body>, ProxyError> {
        // 1. Ambiguous targets first: whether a path is public is only a
        //    sound question when proxy and app read the path the same way.
        check_target(request.method(), request.version(), request.uri())
            .map_err(ProxyError::BadTarget)?;

        // 1b. CORS preflights carry no credentials by design, so they are
        //     answered here, before authentication, and never forwarded.
        if let Some(policy) = &self.cors
            && cors::is_preflight(request.method(), request.headers())
        {
            let origin = request.headers().get(http::header::ORIGIN).cloned();
            return match origin.filter(|origin| policy.allows(origin)) {
                Some(origin) => {
                    *decision = Decision::Preflight(true);
                    Ok(cors::preflight_response(origin))
                }
                None => {
                    *decision = Decision::Preflight(false);
                    Err(ProxyError::CorsRefused)
                }
            };
        }

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
            match self.authenticate(request.method(), request.headers()).await {
                Ok(user_id) => {
                    let value = HeaderValue::from_str(&user_id)
                        .expect("sub was checked to be visible ASCII");
                    *decision = Decision::Allowed(user_id);
                    Some(value)
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
            headers.insert(USER_ID, user_id);
        }
        headers::append_forwarded_for(headers, &peer.forwarded_for);
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
        let idle = self.body_idle_timeout;
        let request = request.map(|body| body.into_request_body(idle));
        let mut response = self.upstream.send(request).await?;
        // The proxy answers in its own version, whatever the app's was
        // (RFC 9110 §6.2): hyper's server wrote an app's `HTTP/1.0` status
        // line to an HTTP/1.1 client, which then read the response as
        // closing its connection.
        *response.version_mut() = Version::HTTP_11;
        // Both framings at once: the body was read by `Transfer-Encoding`,
        // which is hop-by-hop and goes next, so a `Content-Length` left
        // behind would frame the body anew for the client, cut or run
        // over. RFC 9112 §6.3 (rule 3) has an intermediary remove it.
        if response
            .headers()
            .contains_key(http::header::TRANSFER_ENCODING)
        {
            response.headers_mut().remove(http::header::CONTENT_LENGTH);
        }
        headers::strip_hop_by_hop(response.headers_mut());
        if self.cors.is_some() {
            cors::strip_upstream(response.headers_mut());
        }
        Ok(response.map(|body| body.boxed()))
    }

    async fn authenticate(
        &self,
        method: &http::Method,
        headers: &http::HeaderMap,
    ) -> Result<String, ProxyError> {
        match headers::find_credential(headers) {
            Credential::Bearer(token) => self.verify(token).await,
            // A cookie travels with requests other sites make the browser
            // send; a bearer token does not. Checked before any RSA work.
            Credential::Cookies(_) if !self.csrf.allows(method, headers) => {
                Err(ProxyError::CrossSiteRequest)
            }
            Credential::Cookies(candidates) => self.authenticate_cookies(&candidates).await,
            Credential::None => Err(ProxyError::MissingToken),
            Credential::Ambiguous => Err(ProxyError::AmbiguousCredentials),
            Credential::MalformedBearer => Err(ProxyError::InvalidToken(
                crate::verify::Rejection::Malformed,
            )),
        }
    }

    async fn verify(&self, token: &str) -> Result<String, ProxyError> {
        match self.verifier.verify(token).await {
            Ok(identity) => Ok(identity.user_id),
            Err(VerifyError::Invalid(rejection)) => Err(ProxyError::InvalidToken(rejection)),
            Err(VerifyError::KeysUnavailable) => Err(ProxyError::KeysUnavailable {
                retry_after: RETRY_AFTER,
            }),
        }
    }

    /// Chooses among session cookies as Clerk's SDK does: cookies of another
    /// instance (another `iss`) are passed over unverified and cost no
    /// fetch; ours are verified one by one, and an expired or otherwise
    /// invalid one is ignored when another is valid. Two valid tokens for
    /// different users are refused (400): which one the browser meant
    /// cannot be known. Every accepted token passed full verification.
    async fn authenticate_cookies(&self, candidates: &[String]) -> Result<String, ProxyError> {
        let mut user: Option<String> = None;
        let mut first_error: Option<ProxyError> = None;
        for token in candidates {
            if self.verifier.names_other_issuer(token) {
                continue;
            }
            match self.verify(token).await {
                Ok(subject) => match &user {
                    Some(existing) if *existing != subject => {
                        return Err(ProxyError::AmbiguousCredentials);
                    }
                    Some(_) => {}
                    None => user = Some(subject),
                },
                Err(err) => {
                    // An outage outranks a bad token: the 503 says "retry".
                    let outage = matches!(err, ProxyError::KeysUnavailable { .. });
                    if first_error.is_none() || outage {
                        first_error = Some(err);
                    }
                }
            }
        }
        match (user, first_error) {
            (Some(user), _) => Ok(user),
            (None, Some(err)) => Err(err),
            (None, None) => Err(ProxyError::MissingToken),
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
            Decision::Preflight(true) => ("", "cors_preflight"),
            Decision::Preflight(false) => ("", "cors_origin_not_allowed"),
        };
        if let Decision::Preflight(allowed) = decision {
            let result = if *allowed { "allowed" } else { "refused" };
            metrics::counter!(m::CORS_PREFLIGHTS, "result" => result).increment(1);
        }
        match decision {
            Decision::Allowed(_) => self.metrics.allowed.increment(1),
            Decision::Public => self.metrics.public.increment(1),
            _ if !result.is_empty() => {
                metrics::counter!(m::AUTH_DECISIONS, "result" => result, "reason" => reason)
                    .increment(1);
            }
            _ => {}
        }
        if !self.access_log {
            return;
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
