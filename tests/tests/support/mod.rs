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
//! - [`process`]: the built binaries, spawned with their JSON log lines kept.
//! - [`backends`]: embedded (SQLite, files, table queue) or production
//!   (a fresh PostgreSQL database, S3 bucket and SQS queue on moto).
//! - [`stack`]: all of it wired together, talked to only through the proxy.
//!
//! Each test binary uses only part of the harness.
#![allow(dead_code, unused_imports)]

pub mod backends;
pub mod process;
pub mod stack;
pub mod tokens;

// Keys, Clerk-shaped tokens and the HTTPS JWKS server are the proxy
// harness's own, shared by path rather than copied, so a fix to either
// reaches both suites.
#[path = "../../../proxy/tests/support/jwks.rs"]
pub mod jwks;
#[path = "../../../proxy/tests/support/keys.rs"]
pub mod keys;
#[path = "../../../proxy/tests/support/tokens.rs"]
pub mod proxy_tokens;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub use backends::Backend;
pub use jwks::{JwksServer, start_jwks};
pub use keys::{TestKey, foreign_key, key_a, key_b};
pub use stack::{Reply, Stack};
pub use tokens::{expired_token, forged_token, token};

/// How long `eventually` waits before failing the test.
pub const EVENTUALLY: Duration = Duration::from_secs(30);

/// Polls `check` until it returns true, failing the test with `what` after
/// [`EVENTUALLY`]. Used instead of fixed sleeps.
pub async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + EVENTUALLY;
    loop {
        if check().await {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {EVENTUALLY:?} waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A directory under the system temp dir, removed on drop.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "retainwise-e2e-{}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&path).expect("temp dir is created");
        Self { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `contents` to `name` inside the directory and returns its path.
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path.join(name);
        std::fs::write(&path, contents).expect("temp file is written");
        path
    }
}

impl Default for TempDir {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// The Telco layout, 21 columns.
pub const HEADER: &str = "customerID,gender,SeniorCitizen,Partner,Dependents,tenure,PhoneService,\
MultipleLines,InternetService,OnlineSecurity,OnlineBackup,DeviceProtection,TechSupport,StreamingTV,\
StreamingMovies,Contract,PaperlessBilling,PaymentMethod,MonthlyCharges,TotalCharges,Churn";

/// `n` plausible customers with ids `C0000000`.., varied enough to land in
/// every risk band.
pub fn customers_csv(n: usize) -> String {
    let contracts = ["Month-to-month", "One year", "Two year"];
    let internet = ["Fiber optic", "DSL", "No"];
    let mut out = String::from(HEADER);
    out.push('\n');
    for i in 0..n {
        let tenure = (i * 7) % 72;
        let monthly = 20.0 + ((i * 13) % 100) as f64;
        let net = internet[i % 3];
        let addon = if net == "No" {
            "No internet service"
        } else if i % 2 == 0 {
            "Yes"
        } else {
            "No"
        };
        out.push_str(&format!(
            "C{i:07},{},{},{},No,{tenure},Yes,No,{net},{addon},{addon},{addon},{addon},{addon},{addon},{},Yes,Electronic check,{monthly:.2},{:.2},No\n",
            if i % 2 == 0 { "Female" } else { "Male" },
            i % 2,
            if i % 3 == 0 { "Yes" } else { "No" },
            contracts[i % 3],
            monthly * tenure as f64,
        ));
    }
    out
}

/// Checks a scored CSV against the customer ids that went in: one row per
/// input customer, in any order, each probability in [0, 1], each risk
/// level `low`, `medium` or `high`.
pub fn assert_scored(scored: &str, input: &str) {
    let mut lines = scored.lines();
    let header = lines.next().expect("the scored CSV has a header");
    let columns: Vec<&str> = header.split(',').collect();
    assert_eq!(
        &columns[..3],
        ["customer_id", "churn_probability", "risk_level"],
        "scored CSV header: {header}"
    );
    let mut scored_ids: Vec<String> = Vec::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let fields: Vec<&str> = line.split(',').collect();
        let probability: f64 = fields[1]
            .parse()
            .unwrap_or_else(|e| panic!("probability {:?} ({e}) in {line}", fields[1]));
        assert!(
            (0.0..=1.0).contains(&probability),
            "probability out of [0, 1] in {line}"
        );
        assert!(
            ["low", "medium", "high"].contains(&fields[2]),
            "risk level in {line}"
        );
        scored_ids.push(fields[0].to_owned());
    }
    let mut input_ids: Vec<String> = input
        .lines()
        .skip(1)
        .filter(|l| !l.is_empty())
        .map(|l| l.split(',').next().expect("a customer id").to_owned())
        .collect();
    scored_ids.sort();
    input_ids.sort();
    assert_eq!(
        scored_ids.len(),
        input_ids.len(),
        "one scored row per input customer"
    );
    assert_eq!(
        scored_ids, input_ids,
        "the scored rows are the input customers"
    );
}

/// Lower-case hex, for the session ids in minted tokens.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
