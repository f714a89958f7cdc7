//! `retainwise-app healthcheck`: GET a health URL over plain HTTP/1.1 and
//! exit 0 on 200. The container images have no curl; the app listens on
//! loopback only, so no TLS is needed here.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const DEFAULT_URL: &str = "http://127.0.0.1:3000/api/health";
const TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum HealthcheckError {
    #[error("only http://host:port/path URLs are supported, got {0:?}")]
    BadUrl(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("unhealthy: {0}")]
    Status(String),
}

/// `(host:port, path)` of an `http://` URL.
fn split_url(url: &str) -> Result<(String, String), HealthcheckError> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| HealthcheckError::BadUrl(url.into()))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return Err(HealthcheckError::BadUrl(url.into()));
    }
    let authority = if authority.contains(':') && !authority.ends_with(']') {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    Ok((authority, path.to_owned()))
}

/// Returns the status line when the answer is 200.
pub async fn check(url: &str) -> Result<String, HealthcheckError> {
    let (authority, path) = split_url(url)?;
    let exchange = async {
        let mut stream = TcpStream::connect(&authority).await?;
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        stream.take(64 * 1024).read_to_end(&mut response).await?;
        Ok::<_, std::io::Error>(response)
    };
    let response = tokio::time::timeout(TIMEOUT, exchange)
        .await
        .map_err(|_| HealthcheckError::Timeout(TIMEOUT))??;
    let text = String::from_utf8_lossy(&response);
    let status_line = text.lines().next().unwrap_or_default().to_owned();
    if status_line.split_whitespace().nth(1) == Some("200") {
        Ok(status_line)
    } else {
        Err(HealthcheckError::Status(status_line))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_authority_and_path() {
        let (a, p) = split_url(DEFAULT_URL).expect("ok");
        assert_eq!((a.as_str(), p.as_str()), ("127.0.0.1:3000", "/api/health"));
        let (a, p) = split_url("http://localhost").expect("ok");
        assert_eq!((a.as_str(), p.as_str()), ("localhost:80", "/"));
        assert!(split_url("https://x/").is_err());
    }
}
