//! How the pages sign a user in: Clerk in production, the local
//! `retainwise-dev sign-in` page in development, or not at all.
//!
//! The app never sees a token; this only tells the browser where to go
//! when the API answers 401.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use serde::Serialize;

/// The sign-in the shell is configured with (`APP_CLERK_PUBLISHABLE_KEY`,
/// `APP_SIGN_IN_URL`); serialised into the shell's `rw-config` JSON as
/// `{"kind": "clerk" | "local" | "none", …}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SignIn {
    /// ClerkJS, loaded from the instance's Frontend API.
    Clerk {
        /// `pk_test_…` or `pk_live_…`, as the Clerk dashboard shows it.
        publishable_key: String,
        /// `https://<frontend api host>`, decoded from the key.
        frontend_api: String,
    },
    /// A sign-in page that takes `?redirect_url=` and sets `__session`.
    Local {
        /// Absolute URL of the sign-in page.
        url: String,
        /// Its sign-out sibling (`…/sign-out`), when the URL ends in
        /// `/sign-in`.
        sign_out_url: Option<String>,
    },
    /// Nothing configured: a 401 shows a message instead of a redirect.
    None,
}

impl SignIn {
    /// Reads the two settings; a Clerk key wins over a local URL, which is
    /// refused beside it because the two would fight over `__session`.
    ///
    /// # Errors
    /// One line naming the setting: a publishable key that does not
    /// decode as Clerk's, a sign-in URL that is not absolute http(s), or
    /// both set.
    pub fn from_settings(
        publishable_key: Option<&str>,
        sign_in_url: Option<&str>,
    ) -> Result<Self, String> {
        match (publishable_key, sign_in_url) {
            (Some(_), Some(_)) => Err(
                "set APP_CLERK_PUBLISHABLE_KEY (Clerk) or APP_SIGN_IN_URL (local sign-in), not both"
                    .into(),
            ),
            (Some(key), None) => Ok(SignIn::Clerk {
                frontend_api: format!("https://{}", frontend_api_host(key)?),
                publishable_key: key.to_owned(),
            }),
            (None, Some(url)) => {
                let uri: axum::http::Uri = url
                    .parse()
                    .map_err(|_| format!("APP_SIGN_IN_URL {url:?} is not a URL"))?;
                if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
                    return Err(format!(
                        "APP_SIGN_IN_URL {url:?} must be an absolute http(s) URL"
                    ));
                }
                let sign_out_url = url
                    .strip_suffix("/sign-in")
                    .map(|base| format!("{base}/sign-out"));
                Ok(SignIn::Local {
                    url: url.to_owned(),
                    sign_out_url,
                })
            }
            (None, None) => Ok(SignIn::None),
        }
    }

    /// The Frontend API origin, when ClerkJS is used.
    pub fn frontend_api(&self) -> Option<&str> {
        match self {
            SignIn::Clerk { frontend_api, .. } => Some(frontend_api),
            _ => None,
        }
    }
}

/// The Frontend API host a publishable key names: the key is
/// `pk_test_` or `pk_live_` followed by base64 of `<host>$` (Clerk's
/// `parsePublishableKey` in `@clerk/shared/keys`).
fn frontend_api_host(key: &str) -> Result<String, String> {
    let bad = || {
        "APP_CLERK_PUBLISHABLE_KEY is not a Clerk publishable key (pk_test_… or pk_live_…, as the dashboard's API keys page shows)"
            .to_owned()
    };
    let encoded = key
        .strip_prefix("pk_test_")
        .or_else(|| key.strip_prefix("pk_live_"))
        .ok_or_else(bad)?;
    let decoded = STANDARD
        .decode(encoded)
        .or_else(|_| STANDARD_NO_PAD.decode(encoded))
        .map_err(|_| bad())?;
    let text = String::from_utf8(decoded).map_err(|_| bad())?;
    let host = text.strip_suffix('$').ok_or_else(bad)?;
    let valid = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        && host.contains('.');
    if valid {
        Ok(host.to_ascii_lowercase())
    } else {
        Err(bad())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(host: &str) -> String {
        format!("pk_test_{}", STANDARD.encode(format!("{host}$")))
    }

    #[test]
    fn a_publishable_key_names_its_frontend_api() {
        let sign_in = SignIn::from_settings(Some(&key("clerk.retainwise.example")), None);
        assert_eq!(
            sign_in.expect("valid").frontend_api(),
            Some("https://clerk.retainwise.example")
        );
        // Development instances: `<slug>.clerk.accounts.dev`, unpadded.
        let dev = format!(
            "pk_live_{}",
            STANDARD_NO_PAD.encode("calm-owl-12.clerk.accounts.dev$")
        );
        assert_eq!(
            SignIn::from_settings(Some(&dev), None)
                .expect("valid")
                .frontend_api(),
            Some("https://calm-owl-12.clerk.accounts.dev")
        );
    }

    #[test]
    fn keys_that_are_not_clerk_publishable_keys_are_refused() {
        for bad in [
            "sk_test_abc".to_owned(),
            "pk_test_".to_owned(),
            "pk_test_!!!".to_owned(),
            format!("pk_test_{}", STANDARD.encode("no-dollar.example")),
            // A host smuggling a path or a script origin must not reach CSP.
            key("evil.example/x"),
            key("evil.example 'unsafe-inline'"),
            key("localhost"),
        ] {
            let err = SignIn::from_settings(Some(&bad), None).expect_err(&bad);
            assert!(err.contains("APP_CLERK_PUBLISHABLE_KEY"), "{err}");
        }
    }

    #[test]
    fn local_sign_in_urls_are_absolute_and_give_a_sign_out() {
        assert_eq!(
            SignIn::from_settings(None, Some("http://127.0.0.1:8081/sign-in")),
            Ok(SignIn::Local {
                url: "http://127.0.0.1:8081/sign-in".into(),
                sign_out_url: Some("http://127.0.0.1:8081/sign-out".into()),
            })
        );
        for bad in ["/sign-in", "javascript:alert(1)", "127.0.0.1:8081/sign-in"] {
            assert!(SignIn::from_settings(None, Some(bad)).is_err(), "{bad}");
        }
        assert!(SignIn::from_settings(Some(&key("a.example")), Some("http://x/")).is_err());
        assert_eq!(SignIn::from_settings(None, None), Ok(SignIn::None));
    }
}
