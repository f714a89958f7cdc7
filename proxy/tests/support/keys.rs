//! RSA signing keys, generated when a test binary first asks for them and
//! kept for the rest of that binary (`OnceLock`), so few are generated.
//! No private key is ever written to the repository.

use std::sync::OnceLock;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RsaEncoding};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};

use super::TempDir;

/// An RSA key pair with a `kid`.
#[derive(Debug)]
pub struct TestKey {
    pub kid: String,
    signer: Signer,
    /// Modulus and exponent, big-endian, no leading zeros.
    n: Vec<u8>,
    e: Vec<u8>,
    /// SubjectPublicKeyInfo DER, for the PEM form.
    spki: Vec<u8>,
}

#[derive(Debug)]
enum Signer {
    AwsLc(KeyPair),
    /// aws-lc-rs refuses keys under 2048 bits, so the weak key is kept as
    /// PEM and signed with the `openssl` command line tool.
    OpenSsl(String),
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
            signer: Signer::AwsLc(pair),
            n,
            e,
            spki,
        }
    }

    fn generate_weak(kid: &str) -> Self {
        let pem = openssl(&["genrsa", "1024"], &[]);
        let pem = String::from_utf8(pem).expect("openssl genrsa prints PEM");
        let dir = TempDir::new();
        let key_file = dir.write("weak.pem", &pem);
        let spki = openssl(
            &[
                "rsa",
                "-in",
                key_file.to_str().expect("utf-8 path"),
                "-pubout",
                "-outform",
                "DER",
            ],
            &[],
        );
        let (n, e) = rsa_public_numbers(&spki);
        Self {
            kid: kid.to_owned(),
            signer: Signer::OpenSsl(pem),
            n,
            e,
            spki,
        }
    }

    /// Modulus size in bits.
    pub fn bits(&self) -> usize {
        self.n.len() * 8 - self.n[0].leading_zeros() as usize
    }

    /// The public key as a JWK (`kty` RSA, `use` sig, `alg` RS256).
    pub fn jwk(&self) -> Value {
        self.jwk_with_kid(&self.kid)
    }

    /// The public key as a JWK listed under another `kid`.
    pub fn jwk_with_kid(&self, kid: &str) -> Value {
        json!({
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": kid,
            "n": URL_SAFE_NO_PAD.encode(&self.n),
            "e": URL_SAFE_NO_PAD.encode(&self.e),
        })
    }

    /// The public key as PEM "PUBLIC KEY" text (what `CLERK_JWT_KEY` holds).
    pub fn public_pem(&self) -> String {
        let b64 = STANDARD.encode(&self.spki);
        let mut pem = String::from("-----BEGIN PUBLIC KEY-----\n");
        for line in b64.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
            pem.push('\n');
        }
        pem.push_str("-----END PUBLIC KEY-----\n");
        pem
    }

    /// RS256 (PKCS#1 v1.5, SHA-256) signature of `message`.
    pub fn sign_rs256(&self, message: &[u8]) -> Vec<u8> {
        match &self.signer {
            Signer::AwsLc(_) => self.sign_with(&aws_lc_rs::signature::RSA_PKCS1_SHA256, message),
            Signer::OpenSsl(pem) => {
                let dir = TempDir::new();
                let key_file = dir.write("weak.pem", pem);
                openssl(
                    &[
                        "dgst",
                        "-sha256",
                        "-sign",
                        key_file.to_str().expect("utf-8 path"),
                    ],
                    message,
                )
            }
        }
    }

    /// Signature with any aws-lc-rs RSA padding (RS384, PS256, ...).
    pub fn sign_with(&self, padding: &'static dyn RsaEncoding, message: &[u8]) -> Vec<u8> {
        let Signer::AwsLc(pair) = &self.signer else {
            panic!("the weak key signs RS256 only");
        };
        let mut signature = vec![0; pair.public_modulus_len()];
        pair.sign(
            padding,
            &aws_lc_rs::rand::SystemRandom::new(),
            message,
            &mut signature,
        )
        .expect("message is signed");
        signature
    }
}

macro_rules! cached_key {
    ($(#[$doc:meta])* $name:ident, $kid:literal, $make:ident) => {
        $(#[$doc])*
        pub fn $name() -> &'static TestKey {
            static KEY: OnceLock<TestKey> = OnceLock::new();
            KEY.get_or_init(|| TestKey::$make($kid))
        }
    };
}

cached_key!(
    /// The key the JWKS server usually publishes.
    key_a, "ins_test_key_a", generate
);
cached_key!(
    /// A second published key (rotation, removal).
    key_b, "ins_test_key_b", generate
);
cached_key!(
    /// A third key, for sets that must not be served.
    key_c, "ins_test_key_c", generate
);
cached_key!(
    /// A key no JWKS ever lists: the forger's key.
    foreign_key, "ins_test_foreign", generate
);
cached_key!(
    /// A 1024-bit key: listed in a JWKS, it must be ignored.
    weak_key, "ins_test_weak_1024", generate_weak
);

/// Runs `openssl ARGS` with `stdin`, returning stdout.
fn openssl(args: &[&str], stdin: &[u8]) -> Vec<u8> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the `openssl` tool is on PATH (needed for the 1024-bit test key)");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(stdin)
        .expect("openssl reads stdin");
    let output = child.wait_with_output().expect("openssl runs");
    assert!(
        output.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// Reads `n` and `e` out of an RSA SubjectPublicKeyInfo (DER).
fn rsa_public_numbers(spki: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let (_, spki_body, _) = der(spki, 0x30);
    let (_, _algorithm, rest) = der(spki_body, 0x30);
    let (_, bit_string, _) = der(rest, 0x03);
    let rsa_public_key = &bit_string[1..]; // skip the "unused bits" byte
    let (_, numbers, _) = der(rsa_public_key, 0x30);
    let (_, n, rest) = der(numbers, 0x02);
    let (_, e, _) = der(rest, 0x02);
    (strip_zeros(n), strip_zeros(e))
}

/// One DER TLV of the expected tag: (tag, contents, rest).
fn der(input: &[u8], tag: u8) -> (u8, &[u8], &[u8]) {
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
    (tag, &input[header..header + len], &input[header + len..])
}

fn strip_zeros(bytes: &[u8]) -> Vec<u8> {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    bytes[first..].to_vec()
}
