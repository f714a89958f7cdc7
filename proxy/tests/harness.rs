//! Checks of the test harness itself, without the proxy: if these fail,
//! the other integration tests cannot be trusted.

mod support;

use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode};
use serde_json::{Value, json};
use support::jwks::jwks_of;
use support::tokens::{decode_segment, segments};
use support::*;

fn decoding_key(key: &TestKey) -> DecodingKey {
    let jwk = key.jwk();
    DecodingKey::from_rsa_components(jwk["n"].as_str().expect("n"), jwk["e"].as_str().expect("e"))
        .expect("JWK is a valid RSA key")
}

fn validation(alg: Algorithm) -> Validation {
    let mut validation = Validation::new(alg);
    validation.set_issuer(&[ISSUER]);
    validation
}

#[test]
fn minted_tokens_have_clerks_shape_and_verify_with_the_published_jwk() {
    let token = valid_token(key_a());
    let [header, claims, _] = segments(&token);
    assert_eq!(
        decode_segment(header),
        json!({"alg": "RS256", "kid": key_a().kid, "typ": "JWT"})
    );
    let claims = decode_segment(claims);
    let mut names: Vec<_> = claims
        .as_object()
        .expect("object")
        .keys()
        .cloned()
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["azp", "exp", "fva", "iat", "iss", "nbf", "sid", "sub", "v"]
    );
    let verified = decode::<Value>(
        &token,
        &decoding_key(key_a()),
        &validation(Algorithm::RS256),
    )
    .expect("token verifies against key A's JWK");
    assert_eq!(verified.claims["sub"], "user_2def");
    assert!(
        decode::<Value>(
            &token,
            &decoding_key(key_b()),
            &validation(Algorithm::RS256)
        )
        .is_err(),
        "token must not verify against key B"
    );
}

#[test]
fn rs384_and_ps256_tokens_are_honestly_signed_by_the_right_key() {
    let rs384 = TokenBuilder::new(key_a()).rs384(key_a()).build();
    decode::<Value>(
        &rs384,
        &decoding_key(key_a()),
        &validation(Algorithm::RS384),
    )
    .expect("RS384 token verifies");
    let ps256 = TokenBuilder::new(key_a()).ps256(key_a()).build();
    decode::<Value>(
        &ps256,
        &decoding_key(key_a()),
        &validation(Algorithm::PS256),
    )
    .expect("PS256 token verifies");
}

#[test]
fn the_weak_key_is_1024_bits_and_signs() {
    assert_eq!(weak_key().bits(), 1024);
    assert_eq!(key_a().bits(), 2048);
    let token = valid_token(weak_key());
    let signature = segments(&token)[2].to_owned();
    assert_eq!(signature.len(), 171, "a 128-byte signature in base64url");
}

#[test]
fn the_public_pem_round_trips() {
    let pem = key_a().public_pem();
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let spki = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, body)
        .expect("PEM body is base64");
    let token = valid_token(key_a());
    let (signing_input, signature) = token.rsplit_once('.').expect("three segments");
    let signature =
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, signature)
            .expect("signature is base64url");
    aws_lc_rs::signature::UnparsedPublicKey::new(
        &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
        spki,
    )
    .verify(signing_input.as_bytes(), &signature)
    .expect("token verifies with the PEM key");
}

fn https_client(jwks: &JwksServer) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .tls_certs_only([reqwest::Certificate::from_pem(jwks.ca_pem().as_bytes()).expect("CA")])
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_jwks_server_speaks_https_switches_modes_and_goes_down_and_back() {
    let jwks = start_jwks(&[key_a()]).await;
    let client = https_client(&jwks);
    let reply = send(client.get(jwks.url())).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json(), jwks_of(&[key_a()]));

    jwks.set_mode(JwksMode::Status(500));
    assert_eq!(send(client.get(jwks.url())).await.status, 500);
    jwks.set_mode(JwksMode::Huge(jwks_of(&[key_b()])));
    assert!(send(client.get(jwks.url())).await.body.len() > 1024 * 1024);
    jwks.set_mode(JwksMode::HugeChunked(jwks_of(&[key_b()])));
    assert!(send(client.get(jwks.url())).await.body.len() > 1024 * 1024);
    jwks.set_mode(JwksMode::Redirect("http://127.0.0.1:1/".into()));
    let no_redirects = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .tls_certs_only([reqwest::Certificate::from_pem(jwks.ca_pem().as_bytes()).expect("CA")])
        .build()
        .expect("client");
    assert_eq!(send(no_redirects.get(jwks.url())).await.status, 302);
    assert_eq!(jwks.fetches(), 5);

    jwks.go_down().await;
    let fresh = https_client(&jwks);
    assert!(
        fresh.get(jwks.url()).send().await.is_err(),
        "down means refused"
    );
    jwks.come_back().await;
    jwks.serve(&[key_b()]);
    assert_eq!(
        send(fresh.get(jwks.url())).await.json(),
        jwks_of(&[key_b()])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_upstream_records_every_header_line_and_hashes_the_body() {
    let upstream = start_upstream().await;
    let reply = RawRequest::new("POST", "/a/b?c=d")
        .header("X-User-Id", "one")
        .header("x_user_id", "two")
        .header("X-Dup", "1")
        .header("X-Dup", "2")
        .body(b"hello")
        .send(upstream.addr())
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text(), support::upstream::UPSTREAM_BODY);
    let seen = upstream.last();
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.target, "/a/b?c=d");
    assert_eq!(seen.all("x-dup"), ["1", "2"]);
    assert_eq!(seen.identity_headers().len(), 2);
    assert_eq!(seen.body_len, 5);
    assert_eq!(seen.body_sha256, sha256_hex(b"hello"));

    upstream.set_response_headers(&[
        ("connection", "x-upstream-hop"),
        ("x-upstream-hop", "1"),
        ("keep-alive", "timeout=5"),
    ]);
    let reply = RawRequest::get("/hop").send(upstream.addr()).await;
    assert_eq!(reply.header("x-upstream-hop"), Some("1"));
    assert_eq!(reply.header("keep-alive"), Some("timeout=5"));
    assert!(
        reply
            .headers
            .get_all("connection")
            .iter()
            .any(|v| v.to_str().is_ok_and(|v| v.contains("x-upstream-hop"))),
        "the upstream really sends hop-by-hop response headers: {:?}",
        reply.headers
    );
    upstream.set_response_headers(&[]);

    upstream.set_response_len(3 * 1024 * 1024);
    let reply = RawRequest::get("/big").send(upstream.addr()).await;
    assert_eq!(
        sha256_hex(&reply.body),
        sha256_hex(&support::upstream::pattern(3 * 1024 * 1024))
    );

    upstream.stop().await;
    assert!(
        tokio::net::TcpStream::connect(upstream.addr())
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn eventually_polls_until_the_condition_holds() {
    let mut polls = 0;
    eventually("the fifth poll", async || {
        polls += 1;
        polls == 5
    })
    .await;
    assert_eq!(
        polls, 5,
        "eventually stopped polling once the condition held"
    );
}

#[tokio::test(flavor = "multi_thread")]
#[should_panic(expected = "timed out after")]
async fn eventually_fails_the_test_when_the_condition_never_holds() {
    eventually_within(Duration::from_millis(200), "never", async || false).await;
}
