//! Tests that look at the repository as a whole.
//!
//! - `tests/infra.rs` reads the Terraform in `infra/` and the Dockerfiles and
//!   checks the properties the deployment must have (DESIGN.md, issue 6),
//!   including that every setting the proxy container gets is one the proxy
//!   reads (`proxy/src/settings.rs`), so infrastructure and code cannot drift.
//!   Nothing there talks to AWS or runs Terraform: it parses files. It also
//!   checks the CI roles' trust conditions and that the alert rules, the
//!   CloudWatch alarms and `docs/runbook.md` agree.
//! - `tests/workflows.rs` reads `.github/workflows/` and checks the deploy
//!   pipeline's order and conditions, OIDC, permissions and pinned actions.
//! - `tests/operations.rs` runs `scripts/smoke-test.sh` against the local
//!   stack and checks that every metric the Grafana dashboard and the alert
//!   rules name is exposed by the running binaries.
//! - `tests/stack.rs`, `tests/production.rs`, `tests/prometheus.rs` start the
//!   real `retainwise-proxy` and `retainwise-app` binaries (the app with its
//!   worker), an HTTPS JWKS server, and for some tests PostgreSQL, moto (S3,
//!   SQS) and Prometheus, and talk to the stack only through the proxy
//!   (issue 5). Their harness is `tests/support/`.

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

/// The repository root (the workspace this crate belongs to).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate lives one level below the workspace root")
        .to_path_buf()
}
