//! The browser tooling itself (`retainwise_testkit::browser`), checked on
//! pages whose accessibility is known before the app's pages rely on it:
//! headless Chromium opens pages from a throwaway local server that sends a
//! strict `Content-Security-Policy`, waits for an element a script adds
//! later, finds the missing `alt` that axe-core must report, finds nothing
//! on a clean page, and writes a real PNG screenshot.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use retainwise_testkit::browser::{Browser, WINDOW, report};

/// Level A: an image without a text alternative (WCAG 1.1.1, axe's
/// `image-alt`). Otherwise a well-formed page, so that is all axe finds.
const BROKEN: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Broken page</title></head>
<body><main><h1>Broken page</h1><img src="/logo.svg"></main></body></html>"#;

/// The same page with the text alternative, and a script that adds an
/// element after the page has loaded.
const CLEAN: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Clean page</title>
<script src="/late.js" defer></script></head>
<body><main><h1>Clean page</h1><img src="/logo.svg" alt="RetainWise">
<p>Customers at risk, by month.</p></main></body></html>"#;

const LATE_JS: &str = "setTimeout(() => {\n\
     const p = document.createElement('p');\n\
     p.id = 'late';\n\
     p.textContent = 'Added after load';\n\
     document.querySelector('main').append(p);\n\
   }, 200);\n";

const LOGO_SVG: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" width="40" height="40"><rect width="40" height="40" fill="#1f77b4"/></svg>"##;

/// Serves the pages above on 127.0.0.1:0, each with the kind of strict
/// policy the app sends (no inline script, nothing from elsewhere).
async fn serve_pages() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service_fn(page))
                    .await;
            });
        }
    });
    addr
}

async fn page(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, content_type, body) = match request.uri().path() {
        "/broken" => (200, "text/html; charset=utf-8", BROKEN),
        "/clean" => (200, "text/html; charset=utf-8", CLEAN),
        "/late.js" => (200, "text/javascript", LATE_JS),
        "/logo.svg" => (200, "image/svg+xml", LOGO_SVG),
        _ => (404, "text/plain", "not found"),
    };
    let response = Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("content-security-policy", "default-src 'self'")
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .expect("a valid response");
    Ok(response)
}

#[tokio::test]
async fn axe_finds_the_missing_alt_and_nothing_on_the_clean_page_and_screenshots_are_pngs() {
    let site = serve_pages().await;
    let started = Instant::now();
    let browser = Browser::start().await;
    let browser_started = started.elapsed();

    browser.goto(&format!("http://{site}/broken")).await;
    let axe_started = Instant::now();
    let violations = browser.axe().await;
    let first_axe = axe_started.elapsed();
    let ids: Vec<&str> = violations.iter().map(|v| v.id.as_str()).collect();
    assert_eq!(ids, ["image-alt"], "{}", report(&violations));
    let image_alt = &violations[0];
    assert_eq!(image_alt.impact.as_deref(), Some("critical"));
    assert_eq!(image_alt.nodes.len(), 1, "{}", report(&violations));
    assert!(
        image_alt.nodes[0].html.contains("/logo.svg"),
        "{}",
        report(&violations)
    );
    // A second run on the page reuses the injected axe-core.
    let again = browser.axe().await;
    assert_eq!(again.len(), 1, "{}", report(&again));

    browser.goto(&format!("http://{site}/clean")).await;
    let heading = browser.wait_for("main h1").await;
    assert_eq!(heading.text().await.expect("text"), "Clean page");
    let late = browser.wait_for("#late").await;
    assert_eq!(late.text().await.expect("text"), "Added after load");
    let paragraphs = browser.wait_for_count("main p", 2..=2).await;
    assert_eq!(paragraphs.len(), 2);
    let axe_started = Instant::now();
    browser.assert_accessible("the clean page").await;
    let clean_axe = axe_started.elapsed();

    let path = browser.screenshot("browser-smoke.png").await;
    let png = std::fs::read(&path).expect("the screenshot is read");
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is a PNG",
        path.display()
    );
    // The first chunk is IHDR: width and height, big-endian, at 16..24.
    assert_eq!(&png[12..16], b"IHDR");
    let width = u32::from_be_bytes(png[16..20].try_into().expect("4 bytes"));
    let height = u32::from_be_bytes(png[20..24].try_into().expect("4 bytes"));
    // The viewport: the window's width, its height less the toolbar.
    assert_eq!(width, WINDOW.0);
    assert!(height > 0 && height <= WINDOW.1, "height {height}");

    // Reported, not asserted: the CI budget for browser tests.
    eprintln!(
        "browser start {browser_started:?}; axe (inject + run) {first_axe:?}; \
         axe on the clean page {clean_axe:?}; whole test {:?}",
        started.elapsed()
    );
}
