//! One token verification: cold (RSA signature check) and from the
//! verified-token cache. Run with `cargo bench -p retainwise-proxy`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use retainwise_proxy::jwks::VerifyingKey;
use retainwise_proxy::keystore::KeyStore;
use retainwise_proxy::metrics::HotMetrics;
use retainwise_proxy::settings::ClaimRules;
use retainwise_proxy::verify::Verifier;

const ISSUER: &str = "https://clerk.retainwise.example";

fn mint(key: &KeyPair, subject: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let header = serde_json::json!({"alg": "RS256", "kid": "ins_bench", "typ": "JWT"});
    let claims = serde_json::json!({
        "azp": "https://app.retainwise.example", "exp": now + 3600, "fva": [0, -1],
        "iat": now, "iss": ISSUER, "nbf": now - 10, "sid": "sess_bench", "sub": subject, "v": 2
    });
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut signature = vec![0; key.public_modulus_len()];
    key.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        input.as_bytes(),
        &mut signature,
    )
    .expect("sign");
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

fn verifier(key: &KeyPair, cache_size: usize) -> Verifier {
    let public = PublicKeyComponents::<Vec<u8>>::from(key.public_key());
    let verifying = VerifyingKey::from_components("ins_bench".to_owned(), &public.n, &public.e)
        .expect("2048-bit key");
    let store = KeyStore::new(
        None,
        Some(verifying),
        Duration::from_secs(3600),
        Duration::ZERO,
    );
    let rules = ClaimRules {
        issuer: ISSUER.to_owned(),
        audiences: None,
        authorized_parties: Some(vec!["https://app.retainwise.example".to_owned()]),
        leeway: Duration::from_secs(5),
    };
    Verifier::new(
        Arc::new(store),
        rules,
        cache_size,
        Arc::new(HotMetrics::register()),
    )
}

fn bench(c: &mut Criterion) {
    let key = KeyPair::generate(KeySize::Rsa2048).expect("keygen");
    let token = mint(&key, "user_bench");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");

    c.bench_function("verify/cold_rsa", |b| {
        b.iter_batched(
            || verifier(&key, 4),
            |verifier| {
                let identity = runtime.block_on(verifier.verify(black_box(&token)));
                assert!(identity.is_ok());
            },
            BatchSize::SmallInput,
        );
    });

    // As the proxy runs cold: one key set, loaded once, and a token cache
    // too small to hold any of the tokens, so every call checks a signature
    // with a key whose Montgomery constants are already computed.
    let tokens: Vec<String> = (0..64).map(|i| mint(&key, &format!("user_{i}"))).collect();
    let rotating = verifier(&key, 1);
    let mut next = 0;
    c.bench_function("verify/cold_rsa_loaded_key", |b| {
        b.iter(|| {
            next = (next + 1) % tokens.len();
            let identity = runtime.block_on(rotating.verify(black_box(&tokens[next])));
            assert!(identity.is_ok());
        });
    });

    // The RSA check alone, for the share of a cold verification that is
    // the signature (the rest is parsing, the claims and the token cache).
    let public = PublicKeyComponents::<Vec<u8>>::from(key.public_key());
    let verifying = VerifyingKey::from_components("ins_bench".to_owned(), &public.n, &public.e)
        .expect("2048-bit key");
    let (signed, signature) = token.rsplit_once('.').expect("three parts");
    let signature = URL_SAFE_NO_PAD.decode(signature).expect("base64url");
    c.bench_function("verify/rs256_signature_only", |b| {
        b.iter(|| assert!(verifying.verifies_rs256(black_box(signed.as_bytes()), &signature)));
    });

    let warm = verifier(&key, 1024);
    assert!(runtime.block_on(warm.verify(&token)).is_ok());
    c.bench_function("verify/cached", |b| {
        b.iter(|| {
            let identity = runtime.block_on(warm.verify(black_box(&token)));
            assert!(identity.is_ok());
        });
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
