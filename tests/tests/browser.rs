//! The web app as a user meets it: headless Chromium against the real
//! proxy, app and worker, signed in through `retainwise-dev sign-in` (the
//! local stand-in for Clerk's hosted page), so the only credential is the
//! `__session` cookie the proxy verifies like any bearer token.
//!
//! One journey per test, each asserting what the user sees (the upload's
//! ingest report, the charts drawn from the summary, the table's order
//! against the download), that the page broke no part of its
//! `Content-Security-Policy`, and that axe-core finds no WCAG A/AA
//! violation. Screenshots land in `target/screenshots/` for review.

mod support;

use std::path::{Path, PathBuf};

use retainwise_testkit::browser::Browser;
use retainwise_testkit::browser::fantoccini::Locator;
use retainwise_testkit::browser::fantoccini::elements::Element;
use retainwise_testkit::browser::fantoccini::key::Key;
use retainwise_testkit::process::{binary, workspace_root};
use retainwise_testkit::sign_in::DevSignIn;
use retainwise_testkit::{TempDir, free_port};
use serde_json::{Value, json};
use support::jwks::{JwksMode, jwks_of};
use support::stack::Stack;
use support::tokens::{AZP, ISSUER};
use support::{Backend, key_a};

/// The paths a browser opens before it has a cookie (the shell and its
/// assets); everything under `/api/` still needs a verified token.
const PUBLIC_PATHS: &str = "/api/health,/,/assets/,/predictions/";

/// The stack on a proxy address known in advance (the sign-in page must
/// allow it as a redirect target, and the token's `azp` is its origin),
/// with the local sign-in page running on its own loopback port.
struct Web {
    stack: Stack,
    _sign_in: DevSignIn,
    origin: String,
}

impl Web {
    async fn start() -> Self {
        let proxy = free_port();
        let origin = format!("http://{proxy}");
        let sign_in =
            DevSignIn::start(&binary("retainwise-dev"), &origin, &["--issuer", ISSUER]).await;
        let sign_in_addr = sign_in.addr;
        let sign_in_url = format!("http://{sign_in_addr}/sign-in");

        let stack = Stack::start_full(
            Backend::Embedded,
            &[("APP_SIGN_IN_URL", &sign_in_url)],
            &[
                ("PROXY_LISTEN", proxy.to_string()),
                ("PROXY_PUBLIC_PATHS", PUBLIC_PATHS.to_owned()),
                ("CLERK_AUTHORIZED_PARTIES", format!("{AZP},{origin}")),
            ],
        )
        .await;
        // The JWKS publishes the dev key beside the suite's own, as a
        // Clerk instance publishes every key it may sign with.
        let dev_jwks: Value = serde_json::from_slice(
            &std::fs::read(sign_in.keys.path().join("jwks.json")).expect("keygen writes jwks.json"),
        )
        .expect("jwks.json is JSON");
        let mut published = jwks_of(&[key_a()]);
        let all = published["keys"].as_array_mut().expect("keys");
        all.extend(
            dev_jwks["keys"]
                .as_array()
                .expect("dev keys")
                .iter()
                .cloned(),
        );
        stack.jwks.set_mode(JwksMode::Keys(published));
        Self {
            stack,
            _sign_in: sign_in,
            origin,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.origin)
    }

    /// Opens `/`, is sent to the sign-in page, signs in as `user` and
    /// waits to be back on the home page with the uploads loaded.
    async fn sign_in(&self, browser: &Browser, user: &str) {
        browser.goto(&self.url("/")).await;
        self.sign_in_here(browser, user).await;
    }

    /// On the sign-in page the app sent the browser to, signs in as `user`
    /// and waits to be back on the home page.
    async fn sign_in_here(&self, browser: &Browser, user: &str) {
        let field = browser.wait_for("input#user_id").await;
        assert!(
            browser.url().await.contains("/sign-in?redirect_url="),
            "a browser without a session is sent to sign in: {}",
            browser.url().await
        );
        field.clear().await.expect("clear the user id");
        field.send_keys(user).await.expect("type the user id");
        browser
            .client()
            .find(Locator::Css("button[type=submit]"))
            .await
            .expect("the submit button")
            .click()
            .await
            .expect("submit");
        browser.wait_for("#uploads-heading").await;
        assert_eq!(
            browser.url().await,
            self.url("/"),
            "back where they started"
        );
    }
}

fn fixture(name: &str) -> PathBuf {
    workspace_root().join("tests/fixtures").join(name)
}

/// Every `Content-Security-Policy` violation the page saw (`app.js` keeps
/// them in `window.rwCspViolations`).
async fn csp_violations(browser: &Browser) -> Vec<Value> {
    let value = browser
        .client()
        .execute(
            "return window.rwCspViolations ?? ['app.js did not run'];",
            vec![],
        )
        .await
        .expect("read the CSP violations");
    value.as_array().cloned().unwrap_or_default()
}

async fn attr(element: &Element, name: &str) -> String {
    element
        .attr(name)
        .await
        .expect("read an attribute")
        .unwrap_or_default()
}

async fn choose_file(browser: &Browser, path: &Path) {
    browser
        .wait_for("#file-input")
        .await
        .send_keys(path.to_str().expect("utf-8 path"))
        .await
        .expect("choose the file");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_signs_in_uploads_a_file_and_reads_its_charts() {
    let web = Web::start().await;
    let browser = Browser::start().await;
    web.sign_in(&browser, "user_browser").await;
    browser.wait_for("body[data-ready=true]").await;
    browser.assert_accessible("the empty home page").await;

    // What the page shows on the way (the progress bar, each status the
    // uploads table passes through), recorded as it happens: a local
    // transfer and a 300-row job are over before a poll could see them.
    browser
        .client()
        .execute(
            "window.rwSeen = {progress: false, statuses: []};\n\
             new MutationObserver(() => {\n\
               if (document.getElementById('upload-progress')) window.rwSeen.progress = true;\n\
               for (const row of document.querySelectorAll('#uploads-table tr[data-status]')) {\n\
                 const s = row.dataset.status;\n\
                 if (window.rwSeen.statuses.at(-1) !== s) window.rwSeen.statuses.push(s);\n\
               }\n\
             }).observe(document.body, {subtree: true, childList: true, attributes: true});",
            vec![],
        )
        .await
        .expect("install the observer");
    choose_file(&browser, &fixture("sample-customers.csv")).await;
    let report = browser.wait_for("#ingest-report").await;
    let text = report.text().await.expect("report text");
    assert!(
        text.contains("300 customers accepted"),
        "the ingest report counts the rows: {text}"
    );
    assert!(text.contains("Columns used: customerID"), "{text}");
    browser
        .wait_for_count("#uploads-table tr[data-status=completed]", 1..=1)
        .await;
    let seen = browser
        .client()
        .execute("return window.rwSeen;", vec![])
        .await
        .expect("read what the page showed");
    assert_eq!(seen["progress"], true, "a progress bar was shown: {seen}");
    assert_eq!(
        seen["statuses"].as_array().and_then(|s| s.last()),
        Some(&json!("completed")),
        "the status reached completed without a reload: {seen}"
    );
    browser.screenshot("home.png").await;
    browser
        .assert_accessible("the home page with an upload")
        .await;

    report
        .find(Locator::Css("a"))
        .await
        .expect("the prediction link")
        .click()
        .await
        .expect("follow the prediction");
    browser.wait_for("#top-customers tbody tr").await;
    let prediction = browser
        .url()
        .await
        .rsplit('/')
        .next()
        .expect("an id")
        .to_owned();

    // Another user's token does not reach it.
    let other = web.stack.token("user_other");
    let refused = web
        .stack
        .get(
            Some(&other),
            &format!("/api/predictions/{prediction}/summary"),
        )
        .await;
    assert_eq!(refused.status, 404, "{}", refused.text());

    // The charts are drawn from the summary the page read with its cookie.
    let summary: Value = serde_json::from_str(
        &fetch_text(&browser, &format!("/api/predictions/{prediction}/summary")).await,
    )
    .expect("the summary is JSON");
    let bins = summary["histogram"]["counts"]
        .as_array()
        .expect("counts")
        .len();
    let bars = browser
        .wait_for_count("#histogram .ct-bar", bins..=bins)
        .await;
    assert_eq!(bars.len(), bins, "one bar per histogram bin");
    browser.wait_for_count("#histogram .threshold", 2..=2).await;
    let factors = summary["factors"].as_array().expect("factors").len();
    let shown = factors.min(10);
    browser
        .wait_for_count("#factors-chart .ct-bar", 2 * shown..=2 * shown)
        .await;

    // The table opens sorted by churn probability, highest first, and its
    // first row is the highest probability in the download.
    let rows = browser.wait_for_count("#top-customers tbody tr", 1..).await;
    let top = summary["top_customers"].as_array().expect("top customers");
    assert_eq!(rows.len(), top.len());
    let mut shown_probabilities = Vec::new();
    for row in &rows {
        let cell = row
            .find(Locator::Css("td[data-probability]"))
            .await
            .expect("a probability cell");
        let p: f64 = attr(&cell, "data-probability")
            .await
            .parse()
            .expect("a number");
        shown_probabilities.push(p);
    }
    assert!(
        shown_probabilities.windows(2).all(|w| w[0] >= w[1]),
        "highest first: {shown_probabilities:?}"
    );
    let download = fetch_text(&browser, &format!("/api/predictions/{prediction}/download")).await;
    let highest = max_probability(&download);
    assert_eq!(
        shown_probabilities[0], highest,
        "the table's top is the file's top"
    );
    let token = web.stack.token("user_browser");
    let api = web
        .stack
        .get(
            Some(&token),
            &format!("/api/predictions/{prediction}/download"),
        )
        .await;
    assert_eq!(api.status, 200);
    assert_eq!(download, api.text(), "the page's download is the API's");

    // From the keyboard: Enter on a column's sort button sorts by it,
    // typing in the search box filters by customer or factor.
    let enter = char::from(Key::Enter).to_string();
    browser
        .wait_for("th[data-key=row] button")
        .await
        .send_keys(&enter)
        .await
        .expect("press Enter on the Row button");
    browser
        .wait_for("th[data-key=row][aria-sort=descending]")
        .await;
    let mut rows_shown = Vec::new();
    for row in browser.wait_for_count("#top-customers tbody tr", 1..).await {
        let cell = row.find(Locator::Css("td")).await.expect("the row cell");
        let n: u64 = cell.text().await.expect("text").parse().expect("a row");
        rows_shown.push(n);
    }
    assert!(
        rows_shown.windows(2).all(|w| w[0] > w[1]),
        "sorted by row, descending: {rows_shown:?}"
    );
    let query = "month";
    let matching = top
        .iter()
        .filter(|c| {
            c["customer_id"]
                .as_str()
                .unwrap_or("")
                .to_lowercase()
                .contains(query)
                || c["factors"].as_array().is_some_and(|f| {
                    f.iter()
                        .any(|f| f.as_str().unwrap_or("").to_lowercase().contains(query))
                })
        })
        .count();
    assert!(
        0 < matching && matching < top.len(),
        "a query that filters: {matching}"
    );
    browser
        .wait_for("#customer-search")
        .await
        .send_keys("Month")
        .await
        .expect("type a search");
    browser
        .wait_for_count("#top-customers tbody tr", matching..=matching)
        .await;
    let status = browser.wait_for("#top-customers-count").await;
    let said = status.text().await.expect("status text");
    assert!(said.contains(&format!("Showing {matching} of")), "{said}");

    // The browser's cookie does not work from another site.
    let cookie = browser
        .client()
        .get_named_cookie("__session")
        .await
        .expect("the session cookie");
    let cross_site = |site: &str| {
        let request = web
            .stack
            .client
            .post(web.url("/api/uploads?filename=x.csv"))
            .header("cookie", format!("__session={}", cookie.value()))
            .header("content-type", "text/csv")
            .header("sec-fetch-site", site)
            .body("not,a\ncustomer,file\n");
        if site == "cross-site" {
            request.header("origin", "https://evil.example")
        } else {
            request.header("origin", web.origin.clone())
        }
    };
    let refused = retainwise_testkit::send(cross_site("cross-site")).await;
    assert_eq!(refused.status, 403, "{}", refused.text());
    // The same request from the app's own page reaches the app (which
    // refuses the file): the 403 above was the cross-site check.
    let control = retainwise_testkit::send(cross_site("same-origin")).await;
    assert_eq!(control.status, 400, "{}", control.text());

    assert_eq!(csp_violations(&browser).await, Vec::<Value>::new());
    browser.screenshot("prediction.png").await;
    browser
        .client()
        .execute(
            "document.getElementById('factors-heading').scrollIntoView();",
            vec![],
        )
        .await
        .expect("scroll to the factors");
    browser.screenshot("prediction-factors.png").await;
    browser.assert_accessible("the prediction page").await;

    // A file the reader refuses says where, and nothing is stored.
    browser.goto(&web.url("/")).await;
    browser.wait_for("body[data-ready=true]").await;
    let files = TempDir::new();
    let broken = files.write(
        "broken.csv",
        std::fs::read_to_string(fixture("sample-customers.csv"))
            .expect("fixture")
            .lines()
            .take(4)
            .enumerate()
            .map(|(i, line)| {
                if i == 3 {
                    line.replacen(",No,", ",Maybe,", 1)
                } else {
                    line.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("\n"),
    );
    choose_file(&browser, &broken).await;
    let error = browser.wait_for("#upload-error").await;
    let message = error.text().await.expect("error text");
    assert!(
        message.contains("broken.csv was not accepted") && message.contains("row 3"),
        "the refusal names the file and the row: {message}"
    );
    browser
        .wait_for_count("#uploads-table tbody tr", 1..=1)
        .await;
    browser.screenshot("upload-refused.png").await;
    browser
        .assert_accessible("the home page with a refusal")
        .await;
    assert_eq!(csp_violations(&browser).await, Vec::<Value>::new());

    // Signed out and in as someone else, the prediction's URL is not theirs.
    browser
        .wait_for("#sign-out")
        .await
        .click()
        .await
        .expect("sign out");
    browser.wait_for("input#user_id").await;
    web.sign_in_here(&browser, "user_other").await;
    browser
        .goto(&web.url(&format!("/predictions/{prediction}")))
        .await;
    browser.wait_for("#not-found").await;
    browser
        .wait_for_count("#uploads-table, #top-customers", 0..=0)
        .await;
    browser.assert_accessible("the not-found page").await;
}

/// `fetch(path)` in the page, as the signed-in user; the text of a 200.
async fn fetch_text(browser: &Browser, path: &str) -> String {
    let value = browser
        .client()
        .execute_async(
            "const [path, done] = arguments;\n\
             fetch(path).then(async (r) => done({status: r.status, text: await r.text()}),\n\
                              (e) => done({status: 0, text: String(e)}));",
            vec![json!(path)],
        )
        .await
        .expect("fetch in the page");
    assert_eq!(value["status"], 200, "{path}: {value}");
    value["text"].as_str().expect("text").to_owned()
}

/// The highest `churn_probability` in a scored CSV.
fn max_probability(csv: &str) -> f64 {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().expect("a header").split(',').collect();
    let column = header
        .iter()
        .position(|h| *h == "churn_probability")
        .expect("a churn_probability column");
    lines
        .map(|line| {
            line.split(',')
                .nth(column)
                .expect("the column")
                .parse::<f64>()
                .expect("a probability")
        })
        .fold(f64::MIN, f64::max)
}
