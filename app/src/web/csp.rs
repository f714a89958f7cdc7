//! The pages' `Content-Security-Policy` (CSP Level 3, W3C).
//!
//! Everything the pages run comes from `/assets/` on the same origin; no
//! inline script, no `eval`, nothing from a CDN. Two exceptions, each as
//! narrow as the platform allows:
//! - Chartist sets two `style` attributes with `setAttribute` (the chart's
//!   `width: …; height: …;` and its labels' `overflow: visible;`). Those
//!   exact strings are allowed by hash with `'unsafe-hashes'` (CSP3 §6.7.3.4),
//!   so any other inline style is still refused.
//! - With Clerk, exactly what Clerk's CSP guide lists for ClerkJS
//!   (<https://clerk.com/docs/guides/secure/best-practices/csp-headers>): the
//!   instance's Frontend API for scripts and connections, Cloudflare's bot
//!   protection challenge (`https://challenges.cloudflare.com`) for scripts
//!   and frames, `https://img.clerk.com` for avatars, `blob:` workers, and
//!   `'unsafe-inline'` styles (ClerkJS injects its components' styles at
//!   run time; a hash beside it would switch `'unsafe-inline'` off, so
//!   the Chartist hashes are left out then).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

use super::charts::CHART_SIZES;

/// Chartist's label `style` attribute (`foreignObject`), as it writes it.
const LABEL_STYLE: &str = "overflow: visible;";

/// `'sha256-…'` of a style attribute value.
fn hash(style: &str) -> String {
    format!(
        "'sha256-{}'",
        STANDARD.encode(Sha256::digest(style.as_bytes()))
    )
}

/// The policy for the shell page, given the Clerk Frontend API origin
/// when ClerkJS is used.
pub fn policy(clerk_frontend_api: Option<&str>) -> String {
    let mut directives = vec!["default-src 'none'".to_owned()];
    match clerk_frontend_api {
        None => {
            let mut styles: Vec<String> = CHART_SIZES
                .iter()
                .map(|size| hash(&size.style_attribute()))
                .collect();
            styles.push(hash(LABEL_STYLE));
            directives.extend([
                "script-src 'self'".to_owned(),
                format!("style-src 'self' 'unsafe-hashes' {}", styles.join(" ")),
                "img-src 'self' data:".to_owned(),
                "connect-src 'self'".to_owned(),
            ]);
        }
        Some(fapi) => directives.extend([
            format!("script-src 'self' {fapi} https://challenges.cloudflare.com"),
            "style-src 'self' 'unsafe-inline'".to_owned(),
            "img-src 'self' data: https://img.clerk.com".to_owned(),
            format!("connect-src 'self' {fapi}"),
            "worker-src 'self' blob:".to_owned(),
            "frame-src https://challenges.cloudflare.com".to_owned(),
        ]),
    }
    directives.extend([
        "form-action 'self'".to_owned(),
        "frame-ancestors 'none'".to_owned(),
        "base-uri 'none'".to_owned(),
    ]);
    directives.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_clerk_only_the_own_origin_and_chartists_two_styles() {
        let csp = policy(None);
        assert!(
            csp.starts_with("default-src 'none'; script-src 'self';"),
            "{csp}"
        );
        assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"));
        assert!(!csp.contains("https:"), "{csp}");
        // sha256("overflow: visible;"), computed independently with
        // `printf %s 'overflow: visible;' | openssl dgst -sha256 -binary | base64`.
        assert!(
            csp.contains("'sha256-+7g9GIVwIQyRW5AWmV3tOknRu/VejUoNtGLu4+COYXU='"),
            "{csp}"
        );
        assert_eq!(csp.matches("'sha256-").count(), CHART_SIZES.len() + 1);
    }

    #[test]
    fn with_clerk_exactly_the_origins_clerk_documents() {
        let csp = policy(Some("https://clerk.retainwise.example"));
        let origins: Vec<&str> = csp
            .split([' ', ';'])
            .filter(|t| t.starts_with("https://"))
            .collect();
        assert_eq!(
            origins,
            [
                "https://clerk.retainwise.example",
                "https://challenges.cloudflare.com",
                "https://img.clerk.com",
                "https://clerk.retainwise.example",
                "https://challenges.cloudflare.com",
            ]
        );
        assert!(
            !csp.contains("'sha256-"),
            "hashes would disable 'unsafe-inline'"
        );
        assert!(csp.contains("frame-ancestors 'none'"));
    }
}
