//! The pages' files, embedded at compile time (`app/assets/`), each with a
//! strong `ETag` (the first 16 bytes of its SHA-256, in hex).

use std::sync::OnceLock;

use sha2::{Digest, Sha256};

/// An embedded file.
#[derive(Debug)]
pub struct Asset {
    pub path: &'static str,
    pub content_type: &'static str,
    pub bytes: &'static [u8],
    etag: OnceLock<String>,
}

impl Asset {
    const fn new(path: &'static str, content_type: &'static str, bytes: &'static [u8]) -> Self {
        Asset {
            path,
            content_type,
            bytes,
            etag: OnceLock::new(),
        }
    }

    /// `"<hex>"`, computed on first use.
    pub fn etag(&self) -> &str {
        self.etag.get_or_init(|| {
            let digest = Sha256::digest(self.bytes);
            let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
            format!("\"{hex}\"")
        })
    }
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

macro_rules! asset {
    ($path:literal, $type:expr) => {
        Asset::new(
            $path,
            $type,
            include_bytes!(concat!("../../assets/", $path)),
        )
    };
}

static ASSETS: [Asset; 8] = [
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("home.js", JS),
    asset!("prediction.js", JS),
    asset!("dom.js", JS),
    asset!("app.css", CSS),
    asset!("vendor/chartist/index.umd.js", JS),
    asset!("vendor/chartist/index.css", CSS),
];

/// The asset at `path` (relative to `/assets/`), if there is one.
pub fn find(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|asset| asset.path == path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_are_stable_and_distinct() {
        let app = find("app.js").expect("app.js");
        assert_eq!(app.etag(), app.etag());
        assert_eq!(app.etag().len(), 34);
        let css = find("app.css").expect("app.css");
        assert_ne!(app.etag(), css.etag());
        assert!(find("../Cargo.toml").is_none());
        assert!(find("").is_none());
    }
}
