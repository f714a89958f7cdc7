//! Request targets: refuse the ambiguous ones, match the public ones.
//!
//! The proxy decides "public or not" on the path it sees; the app routes on
//! the path it sees. Any target the two could read differently (dot
//! segments, encoded slashes, `;` parameters, doubled slashes) is a way to
//! make a public prefix reach a private route, so such targets are answered
//! 400 and never forwarded. We refuse rather than normalise: a normalised
//! path that differs from what the client sent is itself a disagreement.

use http::{Method, Uri, Version};

/// Why a request target was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetError {
    /// Absolute-form, authority-form (`CONNECT`) or asterisk-form (`OPTIONS *`).
    NotOriginForm,
    /// `.` or `..` segments, plain or percent-encoded.
    DotSegment,
    /// An empty segment (`//`), which some routers collapse and others keep.
    EmptySegment,
    /// `%2f`, `%5c` or a raw `\`: a separator the router may or may not split on.
    EncodedSeparator,
    /// `;` path parameters, which some frameworks strip before routing.
    PathParameter,
    /// A control character or `%00`.
    ControlCharacter,
    /// A `%` not followed by two hex digits.
    BadPercentEncoding,
    /// `%25`: a second decoding pass somewhere would see a different path.
    DoubleEncoding,
}

impl TargetError {
    pub fn describe(self) -> &'static str {
        match self {
            TargetError::NotOriginForm => "request target must be a path (origin-form)",
            TargetError::DotSegment => "path contains a '.' or '..' segment",
            TargetError::EmptySegment => "path contains an empty segment ('//')",
            TargetError::EncodedSeparator => "path contains an encoded or backslash separator",
            TargetError::PathParameter => "path contains ';' parameters",
            TargetError::ControlCharacter => "path contains a control character",
            TargetError::BadPercentEncoding => "path contains an invalid percent escape",
            TargetError::DoubleEncoding => "path contains an encoded '%'",
        }
    }
}

/// Checks that the request names a plain origin-form path that every router
/// reads the same way.
///
/// HTTP/2 carries scheme and authority as pseudo-headers, so hyper hands us
/// an absolute URI for every h2 request; only HTTP/1 absolute-form is a
/// client choice we refuse.
pub fn check_target(method: &Method, version: Version, uri: &Uri) -> Result<(), TargetError> {
    if method == Method::CONNECT {
        return Err(TargetError::NotOriginForm);
    }
    if version < Version::HTTP_2 && (uri.scheme().is_some() || uri.authority().is_some()) {
        return Err(TargetError::NotOriginForm);
    }
    check_path(uri.path())
}

/// Checks the path part alone; see [`check_target`].
pub fn check_path(path: &str) -> Result<(), TargetError> {
    // `OPTIONS *` arrives as path "*"; anything else not starting with '/'
    // is not origin-form either.
    let Some(rest) = path.strip_prefix('/') else {
        return Err(TargetError::NotOriginForm);
    };
    let mut segments = rest.split('/').peekable();
    while let Some(segment) = segments.next() {
        // A trailing slash leaves one empty last segment; that is unambiguous.
        // (So does the path "/" alone.)
        if segment.is_empty() && segments.peek().is_some() {
            return Err(TargetError::EmptySegment);
        }
        check_segment(segment)?;
    }
    Ok(())
}

fn check_segment(segment: &str) -> Result<(), TargetError> {
    let bytes = segment.as_bytes();
    let mut decoded_dots_only = !bytes.is_empty();
    // Every `%` of a segment that gets through the loop starts an escape,
    // so this is the same as finding "%2e" or "%2E" in it, without a
    // second pass (searching for both was 490 instructions a request).
    let mut encoded_dot = false;
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes[i];
        match byte {
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .ok_or(TargetError::BadPercentEncoding)?;
                let value = decode_hex_pair(hex).ok_or(TargetError::BadPercentEncoding)?;
                match value {
                    b'/' | b'\\' => return Err(TargetError::EncodedSeparator),
                    b'.' => encoded_dot = true,
                    b'%' => return Err(TargetError::DoubleEncoding),
                    b';' => return Err(TargetError::PathParameter),
                    v if v < 0x20 || v == 0x7f => return Err(TargetError::ControlCharacter),
                    _ => decoded_dots_only = false,
                }
                i += 3;
                continue;
            }
            b'\\' => return Err(TargetError::EncodedSeparator),
            b';' => return Err(TargetError::PathParameter),
            b'.' => {}
            b if b < 0x20 || b == 0x7f => return Err(TargetError::ControlCharacter),
            _ => decoded_dots_only = false,
        }
        i += 1;
    }
    if decoded_dots_only {
        // Only dots after decoding: ".", "..", "%2e", "%2e%2E", "...", all
        // of which some normaliser somewhere treats as navigation.
        return Err(TargetError::DotSegment);
    }
    if encoded_dot {
        // An encoded dot has no honest use in a path segment and is a
        // classic way to smuggle "..": refuse it wherever it appears.
        return Err(TargetError::DotSegment);
    }
    Ok(())
}

fn decode_hex_pair(hex: &[u8]) -> Option<u8> {
    let high = (hex[0] as char).to_digit(16)?;
    let low = (hex[1] as char).to_digit(16)?;
    Some((high * 16 + low) as u8)
}

/// The paths that need no token.
///
/// An entry ending in `/` matches that prefix by whole segments
/// (`/static/` matches `/static` and `/static/app.js`, not `/staticfile`);
/// any other entry matches only that exact path. `/` alone is the one
/// exception: as a prefix it would make every path public, so it means
/// only the root itself (a web app's home page shell), failing closed.
/// Matching is case-sensitive because the app's router is.
#[derive(Debug, Clone, Default)]
pub struct PublicPaths {
    exact: Vec<String>,
    prefixes: Vec<String>,
}

impl PublicPaths {
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        let mut paths = PublicPaths::default();
        for entry in entries {
            if let Err(err) = check_path(entry) {
                return Err(format!("public path {entry:?}: {}", err.describe()));
            }
            if entry.contains('?') || entry.contains('#') {
                return Err(format!("public path {entry:?}: must be a path only"));
            }
            if entry == "/" {
                paths.exact.push(entry.clone());
                continue;
            }
            match entry.strip_suffix('/') {
                Some(prefix) => paths.prefixes.push(prefix.to_owned()),
                None => paths.exact.push(entry.clone()),
            }
        }
        Ok(paths)
    }

    /// Whether `path` (already checked by [`check_path`]) needs no token.
    pub fn is_public(&self, path: &str) -> bool {
        self.exact.iter().any(|exact| exact == path)
            || self.prefixes.iter().any(|prefix| {
                path.strip_prefix(prefix.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(method: Method, version: Version, uri: &str) -> Result<(), TargetError> {
        check_target(&method, version, &uri.parse().expect("uri"))
    }

    #[test]
    fn plain_paths_pass() {
        for path in [
            "/",
            "/api/health",
            "/api/uploads/",
            "/api/predictions/0190f3a0-1/download",
            "/files/report%20final.csv",
            "/api/uploads?page=2&x=..",
            "/a/.well-known/x",
            "/v1.2/file.name.csv",
        ] {
            assert_eq!(
                target(Method::GET, Version::HTTP_11, path),
                Ok(()),
                "{path}"
            );
        }
    }

    #[test]
    fn ambiguous_paths_are_refused() {
        let cases = [
            ("/api/health/../uploads", TargetError::DotSegment),
            ("/api/health/./x", TargetError::DotSegment),
            ("/api/health/..", TargetError::DotSegment),
            ("/api/health/%2e%2e/uploads", TargetError::DotSegment),
            ("/api/health/%2E%2e/uploads", TargetError::DotSegment),
            ("/api/health/.%2e/uploads", TargetError::DotSegment),
            ("/api/health/x%2ey", TargetError::DotSegment),
            ("/api/health%2f..%2fuploads", TargetError::EncodedSeparator),
            ("/api/health%2F..", TargetError::EncodedSeparator),
            ("/api/health%5c..%5cuploads", TargetError::EncodedSeparator),
            ("/api/health;/../uploads", TargetError::PathParameter),
            ("/api/uploads;jsessionid=1", TargetError::PathParameter),
            ("/api/health%3b", TargetError::PathParameter),
            ("//api/uploads", TargetError::EmptySegment),
            ("/api//uploads", TargetError::EmptySegment),
            ("/api/health%00", TargetError::ControlCharacter),
            ("/api/health%0d%0a", TargetError::ControlCharacter),
            ("/api/health%zz", TargetError::BadPercentEncoding),
            ("/api/health%2", TargetError::BadPercentEncoding),
            ("/api/health%252e%252e", TargetError::DoubleEncoding),
            // An encoded dot is found wherever it is, but an error found
            // further along the same segment is the one reported.
            ("/api/x%2Ey/", TargetError::DotSegment),
            ("/api/x%2e%2fy", TargetError::EncodedSeparator),
            ("/api/x%2e%2", TargetError::BadPercentEncoding),
            ("/api/uploads//", TargetError::EmptySegment),
        ];
        for (path, expected) in cases {
            assert_eq!(check_path(path), Err(expected), "{path}");
        }
    }

    #[test]
    fn non_origin_targets_are_refused_on_http1() {
        assert_eq!(
            target(
                Method::GET,
                Version::HTTP_11,
                "http://evil.example/api/health"
            ),
            Err(TargetError::NotOriginForm)
        );
        assert_eq!(
            target(Method::CONNECT, Version::HTTP_11, "evil.example:443"),
            Err(TargetError::NotOriginForm)
        );
        assert_eq!(
            target(Method::OPTIONS, Version::HTTP_11, "*"),
            Err(TargetError::NotOriginForm)
        );
    }

    #[test]
    fn http2_pseudo_header_authority_is_accepted() {
        assert_eq!(
            target(
                Method::GET,
                Version::HTTP_2,
                "http://proxy.example/api/health"
            ),
            Ok(())
        );
    }

    #[test]
    fn public_prefixes_match_whole_segments_only() {
        let paths =
            PublicPaths::parse(&["/api/health".to_owned(), "/static/".to_owned()]).expect("valid");
        assert!(paths.is_public("/api/health"));
        assert!(!paths.is_public("/api/health/"));
        assert!(!paths.is_public("/api/healthz"));
        assert!(!paths.is_public("/API/health"));
        assert!(!paths.is_public("/api/health/uploads"));
        assert!(paths.is_public("/static"));
        assert!(paths.is_public("/static/"));
        assert!(paths.is_public("/static/js/app.js"));
        assert!(!paths.is_public("/staticfile"));
        assert!(!paths.is_public("/Static/app.js"));
    }

    #[test]
    fn a_root_entry_is_the_root_only() {
        let paths = PublicPaths::parse(&["/".to_owned(), "/assets/".to_owned()]).expect("valid");
        assert!(paths.is_public("/"));
        assert!(paths.is_public("/assets/app.js"));
        for private in [
            "/api/uploads",
            "/api/",
            "//",
            "/index.html",
            "/predictions/x",
        ] {
            assert!(!paths.is_public(private), "{private}");
        }
    }

    #[test]
    fn public_path_entries_are_validated() {
        assert!(PublicPaths::parse(&["api/health".to_owned()]).is_err());
        assert!(PublicPaths::parse(&["/a/../b".to_owned()]).is_err());
        assert!(PublicPaths::parse(&["/a?x=1".to_owned()]).is_err());
    }
}
