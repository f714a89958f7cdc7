//! Parsed identifiers: once a value has one of these types it is valid, so
//! handlers and repositories never re-check it ("parse, don't validate").

use std::fmt;

use uuid::Uuid;

/// The caller, as the authentication proxy named it in `X-User-Id`.
///
/// Same rule as the proxy applies to a token's `sub`: non-empty, at most 256
/// visible ASCII characters. Anything else never came from the proxy.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UserId(String);

/// Longest user id the proxy forwards.
pub const MAX_USER_ID_LEN: usize = 256;

impl UserId {
    pub fn parse(raw: &str) -> Result<Self, InvalidUserId> {
        if raw.is_empty() || raw.len() > MAX_USER_ID_LEN {
            return Err(InvalidUserId);
        }
        if !raw.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(InvalidUserId);
        }
        Ok(UserId(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `X-User-Id` was present but not a user id the proxy could have set.
#[derive(Debug, thiserror::Error)]
#[error("X-User-Id must be 1 to 256 visible ASCII characters")]
pub struct InvalidUserId;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $name(Uuid);

        impl $name {
            pub fn new() -> Self {
                $name(Uuid::new_v4())
            }

            /// Parses the canonical hyphenated form; anything else is `None`.
            pub fn parse(raw: &str) -> Option<Self> {
                Uuid::try_parse(raw).ok().map($name)
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
    };
}

uuid_id!(
    /// An uploaded customer file.
    UploadId
);
uuid_id!(
    /// One scoring run over an upload.
    PredictionId
);

/// Where a prediction is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Queued,
    Running,
    Completed,
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::Running => "running",
            Status::Completed => "completed",
            Status::Failed => "failed",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "queued" => Status::Queued,
            "running" => Status::Running,
            "completed" => Status::Completed,
            "failed" => Status::Failed,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids_are_what_the_proxy_forwards() {
        assert!(UserId::parse("user_2def").is_ok());
        assert!(UserId::parse(&"a".repeat(256)).is_ok());
        for bad in ["", " ", "a b", "é", "tab\t", &"a".repeat(257)] {
            assert!(UserId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ids_round_trip_and_reject_garbage() {
        let id = PredictionId::new();
        assert_eq!(PredictionId::parse(&id.to_string()), Some(id));
        assert_eq!(PredictionId::parse("not-a-uuid"), None);
        assert_eq!(UploadId::parse(""), None);
    }

    #[test]
    fn statuses_round_trip() {
        for s in [
            Status::Queued,
            Status::Running,
            Status::Completed,
            Status::Failed,
        ] {
            assert_eq!(Status::parse(s.as_str()), Some(s));
        }
        assert_eq!(Status::parse("done"), None);
    }
}
