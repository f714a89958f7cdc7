//! Harness for the end-to-end tests. Sentences, not setup:
//!
//! ```ignore
//! let stack = Stack::start(Backend::Embedded).await;   // JWKS (HTTPS), app + worker, proxy
//! let token = stack.token("user_a");
//! let upload = stack.upload(&token, &customers_csv(50)).await;
//! ```
//!
//! - [`keys`], [`tokens`]: RSA keys made at run time and Clerk-shaped tokens.
//! - [`jwks`]: `start_jwks()`, an HTTPS JWKS server with a CA made per run.
//! - [`stack`]: all of it wired together, talked to only through the proxy.
//! - From `retainwise_testkit`: the built binaries spawned with their log
//!   lines kept, the backends (embedded, or a fresh PostgreSQL database, S3
//!   bucket and SQS queue on moto), `eventually`, `TempDir`, `send`/`Reply`
//!   and the sample customer CSVs.
//!
//! Each test binary uses only part of the harness.
#![allow(dead_code, unused_imports)]

pub mod stack;
pub mod tokens;

// Keys, Clerk-shaped tokens and the HTTPS JWKS server are the proxy
// harness's own, shared by path rather than copied, so a fix to either
// reaches both suites. They name `super::TempDir` and `super::hex`, which
// this module re-exports from the testkit.
#[path = "../../../proxy/tests/support/jwks.rs"]
pub mod jwks;
#[path = "../../../proxy/tests/support/keys.rs"]
pub mod keys;
#[path = "../../../proxy/tests/support/tokens.rs"]
pub mod proxy_tokens;

pub use jwks::{JwksServer, start_jwks};
pub use keys::{TestKey, foreign_key, key_a, key_b};
pub use retainwise_testkit::backends::Backend;
pub use retainwise_testkit::telco::{assert_scored, customers_csv};
pub use retainwise_testkit::{Reply, TempDir, eventually, hex, send};
pub use stack::Stack;
pub use tokens::{expired_token, forged_token, token};
