//! Bad settings fail fast: exit code 2, and stderr names each bad
//! environment variable.

mod support;

use std::process::Command;

use support::*;

/// Settings that would start a proxy (key from a PEM, so no network).
fn good() -> Settings {
    Settings::bare()
        .with("CLERK_ISSUER_URL", ISSUER)
        .with("CLERK_JWT_KEY", key_a().public_pem())
        .with("PROXY_UPSTREAM", "http://127.0.0.1:9")
}

async fn assert_refused(settings: Settings, variables: &[&str]) {
    let exit = run_until_exit(settings).await;
    assert_eq!(exit.code, Some(2), "exit code 2; stderr:\n{}", exit.stderr);
    for variable in variables {
        assert!(
            exit.stderr.contains(variable),
            "stderr names {variable}:\n{}",
            exit.stderr
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_good_settings_start() {
    let proxy = spawn_proxy(good()).await;
    assert_eq!(proxy.admin("/healthz").await.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_issuer_is_refused() {
    assert_refused(good().without("CLERK_ISSUER_URL"), &["CLERK_ISSUER_URL"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn no_key_source_is_refused() {
    assert_refused(good().without("CLERK_JWT_KEY"), &["CLERK_JWKS_URL"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_cache_ttl_is_refused() {
    for value in ["ten", "1h", "-5", "1.5"] {
        assert_refused(good().with("JWKS_CACHE_TTL", value), &["JWKS_CACHE_TTL"]).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn other_malformed_durations_are_refused() {
    for variable in [
        "JWKS_CACHE_MAX_AGE",
        "PROXY_UPSTREAM_TIMEOUT",
        "PROXY_DRAIN_TIMEOUT",
    ] {
        assert_refused(good().with(variable, "30s"), &[variable]).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_pem_key_is_refused() {
    assert_refused(
        good().with("CLERK_JWT_KEY", "not a PEM key"),
        &["CLERK_JWT_KEY"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plain_http_jwks_url_is_refused() {
    let settings = good()
        .without("CLERK_JWT_KEY")
        .with("CLERK_JWKS_URL", "http://127.0.0.1:9/.well-known/jwks.json");
    assert_refused(settings, &["CLERK_JWKS_URL"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_bad_setting_is_reported_at_once() {
    let settings = good()
        .without("CLERK_ISSUER_URL")
        .with("JWKS_CACHE_TTL", "soon")
        .with("JWKS_CACHE_MAX_AGE", "forever");
    assert_refused(
        settings,
        &["CLERK_ISSUER_URL", "JWKS_CACHE_TTL", "JWKS_CACHE_MAX_AGE"],
    )
    .await;
}

#[test]
fn help_lists_the_flags() {
    let output = Command::new(env!("CARGO_BIN_EXE_retainwise-proxy"))
        .arg("--help")
        .env_clear()
        .output()
        .expect("the proxy binary runs");
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(help.contains("--config"), "{help}");
}
