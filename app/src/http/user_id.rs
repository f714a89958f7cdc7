//! The caller's identity: `X-User-Id`, set by the authentication proxy.
//!
//! The app trusts this header because it listens on loopback only and the
//! proxy strips any client-sent copy before setting its own. Missing or
//! malformed: 401, since the request did not come through the proxy's
//! authentication.

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};

use super::errors::json_error;
use crate::domain::UserId;

pub const USER_ID_HEADER: &str = "x-user-id";

#[derive(Debug)]
pub enum UserIdRejection {
    Missing,
    Invalid,
}

impl IntoResponse for UserIdRejection {
    fn into_response(self) -> Response {
        let message = match self {
            UserIdRejection::Missing => {
                "X-User-Id is missing: requests must come through the authentication proxy"
            }
            UserIdRejection::Invalid => "X-User-Id is not a valid user id",
        };
        json_error(StatusCode::UNAUTHORIZED, "unauthenticated", message)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for UserId {
    type Rejection = UserIdRejection;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let mut values = parts.headers.get_all(USER_ID_HEADER).iter();
        let value = values.next().ok_or(UserIdRejection::Missing)?;
        if values.next().is_some() {
            return Err(UserIdRejection::Invalid);
        }
        let raw = value.to_str().map_err(|_| UserIdRejection::Invalid)?;
        UserId::parse(raw).map_err(|_| UserIdRejection::Invalid)
    }
}
