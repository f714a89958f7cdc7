//! Tests that look at the repository as a whole.
//!
//! - `tests/infra.rs` reads the Terraform in `infra/` and the Dockerfiles and
//!   checks the properties the deployment must have (DESIGN.md, issue 6),
//!   including that every setting the proxy container gets is one the proxy
//!   reads (`proxy/src/settings.rs`), so infrastructure and code cannot drift.
//!
//! Nothing here talks to AWS or runs Terraform: it parses files.

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

/// The repository root (the workspace this crate belongs to).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate lives one level below the workspace root")
        .to_path_buf()
}
