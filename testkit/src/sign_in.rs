//! `retainwise-dev sign-in`, the local stand-in for Clerk's sign-in page,
//! started on a loopback port with a dev key made for it.

use std::net::SocketAddr;
use std::path::Path;

use crate::TempDir;
use crate::process::Process;

/// A running sign-in page. Dropping it stops the process and removes the
/// key folder.
#[derive(Debug)]
pub struct DevSignIn {
    pub process: Process,
    /// Where it listens.
    pub addr: SocketAddr,
    /// The folder `keygen` wrote the dev key and `jwks.json` into.
    pub keys: TempDir,
}

impl DevSignIn {
    /// Runs `dev keygen` into a fresh folder, then `dev sign-in` on
    /// `127.0.0.1:0` allowing redirects to `allowed_origin`, with `extra`
    /// arguments (`--issuer`, `--ttl`, ...); waits until it listens. `dev`
    /// is the `retainwise-dev` executable (`CARGO_BIN_EXE_retainwise-dev`
    /// in its own crate's tests, [`crate::process::binary`] elsewhere).
    pub async fn start(dev: &Path, allowed_origin: &str, extra: &[&str]) -> Self {
        let keys = TempDir::new();
        let dir = keys.path().to_str().expect("utf-8 path").to_owned();
        let keygen = std::process::Command::new(dev)
            .args(["keygen", "--dir", &dir])
            .output()
            .expect("retainwise-dev keygen runs");
        assert!(keygen.status.success(), "keygen: {keygen:?}");
        let mut args = vec![
            "sign-in",
            "--dir",
            &dir,
            "--listen",
            "127.0.0.1:0",
            "--allowed-origin",
            allowed_origin,
        ];
        args.extend_from_slice(extra);
        let mut process = Process::spawn_path("sign-in", dev, &args, &[], keys.path());
        let addr = process
            .wait_for_address("listening", &[("listener", "sign-in")])
            .await;
        DevSignIn {
            process,
            addr,
            keys,
        }
    }
}
