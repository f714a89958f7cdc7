//! `retainwise-dev sign-in` as a browser meets it: the real binary on a
//! loopback port, driven over HTTP with the headers a browser sends.

use std::path::Path;

use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::redirect::Policy;
use retainwise_testkit::TempDir;
use retainwise_testkit::http::{Reply, send};
use retainwise_testkit::sign_in::DevSignIn;
use serde_json::Value;

const APP: &str = "http://127.0.0.1:8080";
const DEV: &str = env!("CARGO_BIN_EXE_retainwise-dev");

struct SignIn {
    dev: DevSignIn,
    base: String,
    http: reqwest::Client,
}

impl SignIn {
    async fn start(extra: &[&str]) -> Self {
        let dev = DevSignIn::start(Path::new(DEV), APP, extra).await;
        Self {
            base: format!("http://{}", dev.addr),
            dev,
            http: reqwest::Client::builder()
                .redirect(Policy::none())
                .build()
                .expect("client"),
        }
    }

    async fn form(&self, redirect_url: &str) -> Reply {
        send(
            self.http.get(
                reqwest::Url::parse_with_params(
                    &format!("{}/sign-in", self.base),
                    &[("redirect_url", redirect_url)],
                )
                .expect("url"),
            ),
        )
        .await
    }

    /// A form post as Chromium sends it from the sign-in page itself.
    async fn submit(&self, user_id: &str, redirect_url: &str, headers: &[(&str, &str)]) -> Reply {
        let mut request = self
            .http
            .post(format!("{}/sign-in", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(
                reqwest::Url::parse_with_params(
                    "http://x/",
                    &[("user_id", user_id), ("redirect_url", redirect_url)],
                )
                .expect("url")
                .query()
                .expect("query")
                .to_owned(),
            );
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        send(request).await
    }

    fn own_page_headers(&self) -> [(&'static str, String); 2] {
        [
            ("origin", self.base.clone()),
            ("sec-fetch-site", "same-origin".to_owned()),
        ]
    }

    /// The claims of `token` after checking its RS256 signature against
    /// the JWKS `keygen` wrote (the one the proxy is given).
    fn verified_claims(&self, token: &str) -> Value {
        let jwks: Value = serde_json::from_slice(
            &std::fs::read(self.dev.keys.path().join("jwks.json")).expect("jwks.json"),
        )
        .expect("JWKS is JSON");
        let jwk = &jwks["keys"][0];
        let part = |name: &str| {
            URL_SAFE_NO_PAD
                .decode(jwk[name].as_str().expect("JWK member"))
                .expect("base64url")
        };
        let (signing_input, signature) = token.rsplit_once('.').expect("a JWS");
        RsaPublicKeyComponents {
            n: part("n"),
            e: part("e"),
        }
        .verify(
            &RSA_PKCS1_2048_8192_SHA256,
            signing_input.as_bytes(),
            &URL_SAFE_NO_PAD.decode(signature).expect("base64url"),
        )
        .expect("the token verifies with the dev JWKS");
        let (header, claims) = signing_input.split_once('.').expect("header.claims");
        let header: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).expect("b64")).expect("json");
        assert_eq!(header["kid"], jwk["kid"]);
        assert_eq!(header["alg"], "RS256");
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).expect("b64")).expect("json")
    }
}

fn with_headers<'a>(pairs: &'a [(&'static str, String)]) -> Vec<(&'a str, &'a str)> {
    pairs.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[tokio::test]
async fn signing_in_sets_an_eight_hour_session_cookie_and_redirects_back() {
    let sign_in = SignIn::start(&[]).await;
    let back = format!("{APP}/predictions/4f1c?tab=table");

    let form = sign_in.form(&back).await;
    assert_eq!(form.status, 200, "{}", form.text());
    let csp = form.header("content-security-policy").expect("a CSP");
    assert!(csp.starts_with("default-src 'none'"), "{csp}");
    assert!(
        form.text()
            .contains("value=\"http://127.0.0.1:8080/predictions/4f1c?tab=table\""),
        "the form carries the redirect target: {}",
        form.text()
    );

    let headers = sign_in.own_page_headers();
    let reply = sign_in
        .submit("user_alice", &back, &with_headers(&headers))
        .await;
    assert_eq!(reply.status, 303, "{}", reply.text());
    assert_eq!(reply.header("location"), Some(back.as_str()));
    let cookie = reply.header("set-cookie").expect("a session cookie");
    let (pair, attributes) = cookie.split_once("; ").expect("attributes");
    let token = pair
        .strip_prefix("__session=")
        .expect("the __session cookie");
    for attribute in ["Path=/", "HttpOnly", "SameSite=Lax", "Max-Age=28800"] {
        assert!(
            attributes.split("; ").any(|a| a == attribute),
            "{attribute} in {cookie}"
        );
    }
    let claims = sign_in.verified_claims(token);
    assert_eq!(claims["sub"], "user_alice");
    assert_eq!(claims["azp"], APP, "azp is the origin signed in to");
    assert_eq!(claims["iss"], "https://clerk.retainwise.localhost");
    assert_eq!(
        claims["exp"].as_u64().expect("exp") - claims["iat"].as_u64().expect("iat"),
        8 * 3600
    );
}

#[tokio::test]
async fn ttl_shortens_token_and_cookie_together() {
    let sign_in = SignIn::start(&["--ttl", "600"]).await;
    let headers = sign_in.own_page_headers();
    let reply = sign_in
        .submit("user_bob", &format!("{APP}/"), &with_headers(&headers))
        .await;
    assert_eq!(reply.status, 303);
    let cookie = reply.header("set-cookie").expect("cookie");
    assert!(cookie.contains("Max-Age=600"), "{cookie}");
    let token = cookie
        .split(';')
        .next()
        .and_then(|p| p.strip_prefix("__session="))
        .expect("token");
    let claims = sign_in.verified_claims(token);
    assert_eq!(
        claims["exp"].as_u64().expect("exp") - claims["iat"].as_u64().expect("iat"),
        600
    );
}

#[tokio::test]
async fn redirect_targets_off_the_allowed_origins_are_refused() {
    let sign_in = SignIn::start(&[]).await;
    let headers = sign_in.own_page_headers();
    for target in [
        "https://evil.example/",
        "//evil.example/",
        "/predictions/1",
        "javascript:alert(1)",
        // Same host, other port or scheme: another origin (RFC 6454 §4).
        "http://127.0.0.1:9999/",
        "https://127.0.0.1:8080/",
        // User info makes a URL read as the allowed host when it is not.
        "http://127.0.0.1:8080@evil.example/",
        "",
    ] {
        let form = sign_in.form(target).await;
        assert_eq!(form.status, 400, "GET with {target:?}: {}", form.text());
        let reply = sign_in
            .submit("user_alice", target, &with_headers(&headers))
            .await;
        assert_eq!(reply.status, 400, "POST with {target:?}");
        assert!(reply.header("set-cookie").is_none(), "{target:?}");
        assert!(reply.header("location").is_none(), "{target:?}");
    }
}

#[tokio::test]
async fn cross_site_submissions_are_refused_without_a_cookie() {
    let sign_in = SignIn::start(&[]).await;
    let back = format!("{APP}/");
    for headers in [
        vec![("origin", "https://evil.example")],
        vec![("sec-fetch-site", "cross-site")],
        // The app's own origin is same-site to the sign-in port but is
        // not the sign-in page: it has no reason to post this form.
        vec![("origin", APP), ("sec-fetch-site", "same-site")],
        vec![("origin", "null")],
    ] {
        let reply = sign_in.submit("user_mallory", &back, &headers).await;
        assert_eq!(reply.status, 403, "{headers:?}: {}", reply.text());
        assert!(reply.header("set-cookie").is_none(), "{headers:?}");
    }
}

#[tokio::test]
async fn user_ids_outside_the_clerk_shape_are_refused() {
    let sign_in = SignIn::start(&[]).await;
    let headers = sign_in.own_page_headers();
    let long = "u".repeat(65);
    for user in [
        "",
        "user alice",
        "user\r\nX-User-Id: admin",
        "ユーザー",
        &long,
    ] {
        let reply = sign_in
            .submit(user, &format!("{APP}/"), &with_headers(&headers))
            .await;
        assert_eq!(reply.status, 400, "{user:?}");
        assert!(reply.header("set-cookie").is_none());
    }
}

#[tokio::test]
async fn sign_out_clears_the_cookie_and_goes_back() {
    let sign_in = SignIn::start(&[]).await;
    let reply = send(
        sign_in.http.get(
            reqwest::Url::parse_with_params(
                &format!("{}/sign-out", sign_in.base),
                &[("redirect_url", format!("{APP}/"))],
            )
            .expect("url"),
        ),
    )
    .await;
    assert_eq!(reply.status, 303);
    assert_eq!(reply.header("location"), Some("http://127.0.0.1:8080/"));
    let cookie = reply.header("set-cookie").expect("cookie");
    assert!(cookie.starts_with("__session=;"), "{cookie}");
    assert!(cookie.contains("Max-Age=0"), "{cookie}");
}

#[test]
fn it_listens_on_loopback_only_and_needs_the_key() {
    let keys = TempDir::new();
    let dir = keys.path().to_str().expect("utf-8");
    let output = std::process::Command::new(DEV)
        .args(["sign-in", "--dir", dir, "--allowed-origin", APP])
        .output()
        .expect("runs");
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("retainwise-dev keygen"),
        "{output:?}"
    );
    assert!(
        std::process::Command::new(DEV)
            .args(["keygen", "--dir", dir])
            .status()
            .expect("keygen")
            .success()
    );
    for (listen, origin) in [
        ("0.0.0.0:0", APP),
        ("127.0.0.1:0", "http://127.0.0.1:8080/app"),
    ] {
        let output = std::process::Command::new(DEV)
            .args(["sign-in", "--dir", dir, "--listen", listen])
            .args(["--allowed-origin", origin])
            .output()
            .expect("runs");
        assert!(!output.status.success(), "{listen} {origin}");
        assert!(!output.stderr.is_empty());
    }
}
