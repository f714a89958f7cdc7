//! RSA-2048 signing keys generated at run time (never committed), each kept
//! for the rest of its test binary. Adapted from `proxy/tests/support/keys.rs`.

use std::sync::OnceLock;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::KeyPair as _;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

/// An RSA key pair with a `kid`.
#[derive(Debug)]
pub struct TestKey {
    pub kid: String,
    pair: KeyPair,
    n: Vec<u8>,
    e: Vec<u8>,
}

impl TestKey {
    fn generate(kid: &str) -> Self {
        let pair = KeyPair::generate(KeySize::Rsa2048).expect("RSA-2048 key is generated");
        let spki = pair
            .public_key()
            .as_der()
            .expect("public key encodes as DER")
            .as_ref()
            .to_vec();
        let (n, e) = rsa_public_numbers(&spki);
        Self {
            kid: kid.to_owned(),
            pair,
            n,
            e,
        }
    }

    /// The public key as a JWK (`kty` RSA, `use` sig, `alg` RS256).
    pub fn jwk(&self) -> Value {
        json!({
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": self.kid,
            "n": URL_SAFE_NO_PAD.encode(&self.n),
            "e": URL_SAFE_NO_PAD.encode(&self.e),
        })
    }

    /// RS256 (PKCS#1 v1.5, SHA-256) signature of `message`.
    pub fn sign_rs256(&self, message: &[u8]) -> Vec<u8> {
        let mut signature = vec![0; self.pair.public_modulus_len()];
        self.pair
            .sign(
                &aws_lc_rs::signature::RSA_PKCS1_SHA256,
                &aws_lc_rs::rand::SystemRandom::new(),
                message,
                &mut signature,
            )
            .expect("message is signed");
        signature
    }
}

macro_rules! cached_key {
    ($(#[$doc:meta])* $name:ident, $kid:literal) => {
        $(#[$doc])*
        pub fn $name() -> &'static TestKey {
            static KEY: OnceLock<TestKey> = OnceLock::new();
            KEY.get_or_init(|| TestKey::generate($kid))
        }
    };
}

cached_key!(
    /// The key the JWKS server publishes from the start.
    key_a, "ins_e2e_key_a"
);
cached_key!(
    /// The key added by a rotation.
    key_b, "ins_e2e_key_b"
);
cached_key!(
    /// A key no JWKS ever lists: the forger's key.
    foreign_key, "ins_e2e_foreign"
);

/// Reads `n` and `e` out of an RSA SubjectPublicKeyInfo (DER).
fn rsa_public_numbers(spki: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let (spki_body, _) = der(spki, 0x30);
    let (_algorithm, rest) = der(spki_body, 0x30);
    let (bit_string, _) = der(rest, 0x03);
    let rsa_public_key = &bit_string[1..]; // skip the "unused bits" byte
    let (numbers, _) = der(rsa_public_key, 0x30);
    let (n, rest) = der(numbers, 0x02);
    let (e, _) = der(rest, 0x02);
    (strip_zeros(n), strip_zeros(e))
}

/// One DER TLV of the expected tag: (contents, rest).
fn der(input: &[u8], tag: u8) -> (&[u8], &[u8]) {
    assert_eq!(input[0], tag, "unexpected DER tag");
    let (len, header) = match input[1] {
        short @ 0..=0x7f => (short as usize, 2),
        long => {
            let count = (long & 0x7f) as usize;
            let len = input[2..2 + count]
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | *b as usize);
            (len, 2 + count)
        }
    };
    (&input[header..header + len], &input[header + len..])
}

fn strip_zeros(bytes: &[u8]) -> Vec<u8> {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    bytes[first..].to_vec()
}
