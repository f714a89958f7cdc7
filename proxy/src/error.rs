//! Every way a request can fail, tagged by where it failed, and the one
//! function that turns each into a response.
//!
//! Error bodies are small fixed JSON objects. They never echo the token,
//! the path or anything else the client sent, so an error page cannot be
//! turned into a reflection or a log-injection vector.

use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};

use crate::path::TargetError;
use crate::verify::Rejection;

/// Why a response body from the app ended early.
#[derive(Debug, thiserror::Error)]
pub enum ResponseBodyError {
    /// A body hyper's client reads (a request that had a body).
    #[error(transparent)]
    Hyper(#[from] hyper::Error),
    /// A body the proxy reads itself ([`crate::h1client`]).
    #[error(transparent)]
    App(#[from] crate::h1client::ResponseError),
}

/// The body type every response shares.
pub type Body = BoxBody<Bytes, ResponseBodyError>;

const REALM: &str = "Bearer realm=\"retainwise\"";

#[derive(Debug)]
pub enum ProxyError {
    /// The client sent something no router should have to interpret.
    BadTarget(TargetError),
    /// No credential at all.
    MissingToken,
    /// Credentials that cannot be read one way only (RFC 6750 invalid_request).
    AmbiguousCredentials,
    /// A credential that failed verification.
    InvalidToken(Rejection),
    /// No usable keys: our outage, not the caller's fault.
    KeysUnavailable {
        retry_after: Duration,
    },
    /// The upstream refused the connection or broke the exchange.
    UpstreamConnect,
    Upstream,
    /// The upstream did not answer within the timeout.
    UpstreamTimeout,
    /// The client stopped sending its request body (RFC 9110 §15.5.9: 408).
    RequestBodyTimeout,
    /// The client's connection broke while it sent the body.
    ClientBody,
    /// A CORS preflight from an origin that is not allowed.
    CorsRefused,
    /// A cookie-authenticated, state-changing request from another site.
    CrossSiteRequest,
}

impl ProxyError {
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::BadTarget(_) | ProxyError::AmbiguousCredentials => StatusCode::BAD_REQUEST,
            ProxyError::MissingToken | ProxyError::InvalidToken(_) => StatusCode::UNAUTHORIZED,
            ProxyError::KeysUnavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ProxyError::UpstreamConnect | ProxyError::Upstream => StatusCode::BAD_GATEWAY,
            ProxyError::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            ProxyError::RequestBodyTimeout => StatusCode::REQUEST_TIMEOUT,
            ProxyError::ClientBody => StatusCode::BAD_REQUEST,
            ProxyError::CorsRefused | ProxyError::CrossSiteRequest => StatusCode::FORBIDDEN,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            ProxyError::BadTarget(_) => "bad_request",
            ProxyError::MissingToken => "missing_token",
            ProxyError::AmbiguousCredentials => "invalid_request",
            ProxyError::InvalidToken(_) => "invalid_token",
            ProxyError::KeysUnavailable { .. } => "keys_unavailable",
            ProxyError::UpstreamConnect | ProxyError::Upstream => "bad_gateway",
            ProxyError::UpstreamTimeout => "gateway_timeout",
            ProxyError::RequestBodyTimeout => "request_timeout",
            ProxyError::ClientBody => "bad_request",
            ProxyError::CorsRefused => "cors_origin_not_allowed",
            ProxyError::CrossSiteRequest => "cross_site_request",
        }
    }

    fn message(&self) -> &'static str {
        match self {
            ProxyError::BadTarget(err) => err.describe(),
            ProxyError::MissingToken => "a bearer token or session cookie is required",
            ProxyError::AmbiguousCredentials => "the request carries more than one credential",
            ProxyError::InvalidToken(rejection) => rejection.description(),
            ProxyError::KeysUnavailable { .. } => {
                "token verification keys are unavailable; retry shortly"
            }
            ProxyError::UpstreamConnect => "the application is unreachable",
            ProxyError::Upstream => "the application broke the exchange",
            ProxyError::UpstreamTimeout => "the application did not answer in time",
            ProxyError::RequestBodyTimeout => "the request body stopped arriving",
            ProxyError::ClientBody => "the request body was cut short",
            ProxyError::CorsRefused => "this origin may not call the API from a browser",
            ProxyError::CrossSiteRequest => {
                "a request sent by another site with the session cookie is refused"
            }
        }
    }

    /// The `reason` written to the access log and the auth metric.
    pub fn reason(&self) -> &'static str {
        match self {
            ProxyError::BadTarget(_) => "bad_target",
            ProxyError::MissingToken => "missing_token",
            ProxyError::AmbiguousCredentials => "multiple_credentials",
            ProxyError::InvalidToken(rejection) => rejection.reason(),
            ProxyError::KeysUnavailable { .. } => "keys_unavailable",
            ProxyError::UpstreamConnect => "upstream_connect",
            ProxyError::Upstream => "upstream_error",
            ProxyError::UpstreamTimeout => "upstream_timeout",
            ProxyError::RequestBodyTimeout => "body_timeout",
            ProxyError::ClientBody => "client_body_error",
            ProxyError::CorsRefused => "cors_origin_not_allowed",
            ProxyError::CrossSiteRequest => "cross_site_request",
        }
    }

    /// The `WWW-Authenticate` challenge (RFC 6750 §3): no error code when
    /// no credential was offered, `invalid_token` or `invalid_request`
    /// otherwise. It never echoes the URL or the token.
    fn challenge(&self) -> Option<String> {
        match self {
            ProxyError::MissingToken => Some(REALM.to_owned()),
            ProxyError::InvalidToken(_) | ProxyError::AmbiguousCredentials => Some(format!(
                "{REALM}, error=\"{}\", error_description=\"{}\"",
                self.code(),
                self.message()
            )),
            _ => None,
        }
    }

    pub fn into_response(self) -> Response<Body> {
        let body = serde_json::json!({"error": self.code(), "message": self.message()});
        let mut response = Response::new(full(body.to_string()));
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(challenge) = self.challenge()
            && let Ok(value) = HeaderValue::from_str(&challenge)
        {
            headers.insert(WWW_AUTHENTICATE, value);
        }
        if let ProxyError::KeysUnavailable { retry_after } = self {
            headers.insert(RETRY_AFTER, HeaderValue::from(retry_after.as_secs().max(1)));
        }
        response
    }
}

/// A complete body from bytes, in the body type every response shares.
pub fn full(data: impl Into<Bytes>) -> Body {
    Full::new(data.into())
        .map_err(|never| match never {})
        .boxed()
}

/// The whole cause chain of an error: hyper's and reqwest's top-level
/// messages ("error sending request") hide the part an operator needs
/// ("connection refused", "unknown issuer").
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
