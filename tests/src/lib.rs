//! End-to-end tests for RetainWise: `tests/tests/` start the real
//! `retainwise-proxy` and `retainwise-app` binaries (the app with its
//! worker), an HTTPS JWKS server, and for some tests PostgreSQL, moto
//! (S3, SQS) and Prometheus, and talk to the stack only through the proxy.
//! This library is empty; the harness lives in `tests/tests/support/`.
#![forbid(unsafe_code)]
