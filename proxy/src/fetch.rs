//! Getting a JWKS document: over HTTPS, or from a file.
//!
//! The HTTPS client refuses what a JWKS endpoint has no reason to send:
//! plain HTTP, redirects to another host, bodies over 1 MiB, answers slower
//! than the fetch timeout. Any of these leaves the current keys in place.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::error_chain;
use crate::jwks::JwksError;

/// A real JWKS is a few kilobytes; a megabyte is already generous.
pub const MAX_JWKS_BYTES: usize = 1024 * 1024;
/// A JWKS host has no reason to bounce us around.
const MAX_REDIRECTS: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("request failed: {0}")]
    Request(String),
    #[error("timed out")]
    Timeout,
    #[error("HTTP status {0}")]
    Status(u16),
    #[error("body larger than {MAX_JWKS_BYTES} bytes")]
    TooLarge,
    #[error("cannot read {0}: {1}")]
    File(PathBuf, String),
    #[error("{0}")]
    Document(JwksError),
}

impl FetchError {
    /// The `reason` label of the fetch counter.
    pub fn reason(&self) -> &'static str {
        match self {
            FetchError::Request(_) => "request",
            FetchError::Timeout => "timeout",
            FetchError::Status(_) => "status",
            FetchError::TooLarge => "too_large",
            FetchError::File(..) => "file",
            FetchError::Document(err) => err.reason(),
        }
    }
}

/// Where JWKS documents come from.
#[derive(Debug)]
pub enum KeySource {
    Url {
        client: reqwest::Client,
        url: reqwest::Url,
    },
    /// Re-read on every refresh, so a mounted secret can be rotated in place.
    File(PathBuf),
    /// A document in memory whose fetch takes a set (Tokio) time and is
    /// logged: the key store's tests run it on paused time.
    #[cfg(test)]
    Memory(std::sync::Arc<MemorySource>),
}

/// See [`KeySource::Memory`].
#[cfg(test)]
#[derive(Debug, Default)]
pub struct MemorySource {
    pub document: std::sync::Mutex<String>,
    pub fetch_time: Duration,
    /// When each fetch started.
    pub started: std::sync::Mutex<Vec<tokio::time::Instant>>,
}

impl KeySource {
    /// An HTTPS source; `extra_ca_pem` is trusted on top of the system roots.
    pub fn url(
        url: reqwest::Url,
        extra_ca_pem: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<Self, String> {
        let origin_host = url.host_str().map(str::to_owned);
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            let same_host = attempt.url().host_str().map(str::to_owned) == origin_host;
            if attempt.url().scheme() != "https" {
                attempt.error("redirect to a non-https URL")
            } else if !same_host {
                attempt.error("redirect to another host")
            } else if attempt.previous().len() > MAX_REDIRECTS {
                attempt.error("too many redirects")
            } else {
                attempt.follow()
            }
        });
        let mut builder = reqwest::Client::builder()
            .https_only(true)
            .redirect(redirects)
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("retainwise-proxy/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = extra_ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|err| format!("CA file is not PEM: {err}"))?;
            if certs.is_empty() {
                return Err("CA file holds no certificate".to_owned());
            }
            builder = builder.tls_certs_merge(certs);
        }
        let client = builder
            .build()
            .map_err(|err| format!("cannot build the JWKS client: {err}"))?;
        Ok(KeySource::Url { client, url })
    }

    pub async fn fetch(&self) -> Result<Vec<u8>, FetchError> {
        match self {
            KeySource::Url { client, url } => fetch_url(client, url).await,
            KeySource::File(path) => {
                let metadata = tokio::fs::metadata(path)
                    .await
                    .map_err(|err| FetchError::File(path.clone(), err.to_string()))?;
                if metadata.len() > MAX_JWKS_BYTES as u64 {
                    return Err(FetchError::TooLarge);
                }
                tokio::fs::read(path)
                    .await
                    .map_err(|err| FetchError::File(path.clone(), err.to_string()))
            }
            #[cfg(test)]
            KeySource::Memory(source) => {
                source
                    .started
                    .lock()
                    .expect("lock")
                    .push(tokio::time::Instant::now());
                // The server answers with what it holds when asked.
                let body = source.document.lock().expect("lock").clone().into_bytes();
                tokio::time::sleep(source.fetch_time).await;
                Ok(body)
            }
        }
    }
}

async fn fetch_url(client: &reqwest::Client, url: &reqwest::Url) -> Result<Vec<u8>, FetchError> {
    let classify = |err: reqwest::Error| {
        if err.is_timeout() {
            FetchError::Timeout
        } else {
            FetchError::Request(error_chain(&err))
        }
    };
    let mut response = client
        .get(url.clone())
        .header(http::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(classify)?;
    if !response.status().is_success() {
        return Err(FetchError::Status(response.status().as_u16()));
    }
    if response
        .content_length()
        .is_some_and(|len| len > MAX_JWKS_BYTES as u64)
    {
        return Err(FetchError::TooLarge);
    }
    // Read chunk by chunk: a missing or lying Content-Length must not let
    // the body grow past the limit in memory.
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(classify)? {
        if body.len() + chunk.len() > MAX_JWKS_BYTES {
            return Err(FetchError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
