//! A real browser for tests: headless Chromium driven over WebDriver, with
//! axe-core for accessibility checks (feature `browser`).
//!
//! [`Browser::start`] runs Debian's `chromedriver` (package
//! `chromium-driver`) on a free loopback port and opens one Chromium session
//! through [`fantoccini`], headless, with a throwaway profile and a
//! 1280×900 window. Dropping the [`Browser`] ends the session, which makes
//! chromedriver quit Chromium, and then kills chromedriver by PID.
//!
//! Waiting for the page goes through [`crate::wait`]: the limits are bounds
//! on a hung page, never assertions about speed.
//!
//! [`axe`] injects the vendored axe-core (`testkit/vendor/axe-core/`,
//! compiled in) into the current page and returns its WCAG 2.0/2.1 A and AA
//! violations, each with the elements it found, so a failing test names
//! them. WebDriver runs scripts outside the page's `Content-Security-Policy`,
//! so a strict policy on the page under test does not stop it.

use std::fmt;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use fantoccini;
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::fs::TempDir;
use crate::net::free_port;
use crate::process::{Process, workspace_root};
use crate::wait::{SLOW, wait_for};

/// axe-core 4.14.1, minified (see `testkit/vendor/axe-core/VENDOR.md`).
const AXE_SOURCE: &str = include_str!("../vendor/axe-core/axe.min.js");

/// The axe-core tags checked: WCAG 2.0 and 2.1, levels A and AA.
pub const AXE_TAGS: [&str; 4] = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"];

/// Window width and height in CSS pixels. Screenshots show the viewport:
/// the full width, and the height less the window's (headless) toolbar
/// (757 pixels with Chromium 156).
pub const WINDOW: (u32, u32) = (1280, 900);

/// How long WebDriver lets one script run (axe on a large page takes
/// seconds; the default 30 s is too close on a loaded 2-core machine).
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);

/// Chromium's command line. Headless without a sandbox (tests may run as
/// root in a container, where the sandbox cannot start), without a GPU, with
/// shared memory in /tmp (a container's /dev/shm is often 64 MB), and with
/// every background download and first-run step off so that a test run
/// makes no connection but the ones the test asks for.
const CHROMIUM_ARGS: [&str; 10] = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,900",
];

/// The folder screenshots are written to: `target/screenshots/` under the
/// workspace root (ignored by git, with the rest of `target/`).
pub fn screenshots_dir() -> PathBuf {
    workspace_root().join("target").join("screenshots")
}

/// A headless Chromium session and the chromedriver serving it; both end
/// when this is dropped.
#[derive(Debug)]
pub struct Browser {
    client: Client,
    session: String,
    driver_addr: SocketAddr,
    // Dropped after the session is deleted (see `Drop`): killing
    // chromedriver first would leave Chromium running.
    driver: Process,
    profile: TempDir,
}

impl Browser {
    /// Starts chromedriver on a free loopback port, waits until its
    /// `/status` says it is ready, and opens a session. Fails the test when
    /// `chromedriver` is not on `PATH` (naming the Debian packages), when
    /// chromedriver exits or never gets ready, or when Chromium cannot
    /// start (with chromedriver's reason).
    pub async fn start() -> Self {
        let chromedriver = find_on_path("chromedriver").unwrap_or_else(|| {
            panic!(
                "chromedriver is not on PATH: install Debian's chromium and chromium-driver \
                 (apt-get install chromium chromium-driver; scripts/test.sh does it as root)"
            )
        });
        let profile = TempDir::new();
        let driver_addr = free_port();
        let port = format!("--port={}", driver_addr.port());
        let mut vars = Vec::new();
        // Chromium and fontconfig keep caches under HOME; without it every
        // start rebuilds them.
        if let Some(home) = std::env::var_os("HOME") {
            vars.push(("HOME".to_owned(), home.to_string_lossy().into_owned()));
        }
        let mut driver = Process::spawn_path(
            "chromedriver",
            &chromedriver,
            &[&port],
            &vars,
            profile.path(),
        );
        wait_until_ready(&mut driver, driver_addr).await;

        let user_data_dir = format!("--user-data-dir={}", profile.path().display());
        let mut args: Vec<&str> = CHROMIUM_ARGS.to_vec();
        args.push(&user_data_dir);
        let capabilities = json!({
            "browserName": "chrome",
            "timeouts": { "script": SCRIPT_TIMEOUT.as_millis() as u64 },
            "goog:chromeOptions": { "args": args },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!("a JSON object literal")
        };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&format!("http://{driver_addr}"))
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "chromedriver opens a Chromium session: {e}\n{}",
                    driver.stderr.all().join("\n")
                )
            });
        let session = client
            .session_id()
            .await
            .expect("the session id is read")
            .expect("a new session has an id");
        Self {
            client,
            session,
            driver_addr,
            driver,
            profile,
        }
    }

    /// The WebDriver client, for everything the helpers here do not cover
    /// (clicks, forms, file inputs, cookies, scripts).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The throwaway profile Chromium runs with (`--user-data-dir`), removed
    /// on drop; every Chromium process names it on its command line.
    pub fn profile_dir(&self) -> &Path {
        self.profile.path()
    }

    /// chromedriver's process id.
    pub fn driver_pid(&self) -> u32 {
        self.driver.id()
    }

    /// Opens `url` and waits until it has loaded (WebDriver's "normal"
    /// page-load strategy: the `load` event).
    pub async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("the browser opens {url}: {e}"));
    }

    /// The current page's URL.
    pub async fn url(&self) -> String {
        self.client
            .current_url()
            .await
            .expect("the current URL is read")
            .to_string()
    }

    /// Waits until an element matches the CSS `selector` and returns the
    /// first; fails the test after [`SLOW`] with the page's URL.
    pub async fn wait_for(&self, selector: &str) -> Element {
        let mut found = self.wait_for_count(selector, 1..).await;
        found.swap_remove(0)
    }

    /// Waits until the number of elements matching the CSS `selector` is
    /// in `count` (`3..=3` for exactly three, `1..` for any) and returns
    /// them in document order; fails the test after [`SLOW`] with the last
    /// count seen.
    pub async fn wait_for_count(
        &self,
        selector: &str,
        count: impl std::ops::RangeBounds<usize>,
    ) -> Vec<Element> {
        let what = format!(
            "{:?}..{:?} elements match {selector:?}",
            count.start_bound(),
            count.end_bound()
        );
        wait_for(SLOW, &what, async || {
            let found = self
                .client
                .find_all(Locator::Css(selector))
                .await
                .map_err(|e| e.to_string())?;
            if count.contains(&found.len()) {
                Ok(found)
            } else {
                Err(format!("{} at {}", found.len(), self.url().await))
            }
        })
        .await
    }

    /// Saves a PNG of the window as `name` (say `home.png`) in
    /// [`screenshots_dir`] and returns its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self
            .client
            .screenshot()
            .await
            .expect("the browser takes a screenshot");
        let dir = screenshots_dir();
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("{} is created: {e}", dir.display()));
        let path = dir.join(name);
        std::fs::write(&path, png).unwrap_or_else(|e| panic!("{} is written: {e}", path.display()));
        path
    }

    /// The current page's accessibility violations; see [`axe`].
    pub async fn axe(&self) -> Vec<Violation> {
        axe(&self.client).await
    }

    /// Fails the test, listing every violation, when axe finds any on the
    /// current page; `page` names it in the message.
    pub async fn assert_accessible(&self, page: &str) {
        let violations = self.axe().await;
        assert!(
            violations.is_empty(),
            "{page} ({}) has {} accessibility violation(s):\n{}",
            self.url().await,
            violations.len(),
            report(&violations)
        );
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Synchronous, so it works whether or not a runtime is still
        // running; chromedriver answers once Chromium has quit.
        if let Err(e) = delete_session(self.driver_addr, &self.session) {
            eprintln!("closing the browser session failed ({e}); killing chromedriver");
        }
    }
}

/// `DELETE /session/{id}`, reading only the status line: chromedriver
/// sends it after Chromium has exited.
fn delete_session(addr: SocketAddr, session: &str) -> std::io::Result<()> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    write!(
        stream,
        "DELETE /session/{session} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\n\
         Connection: close\r\n\r\n"
    )?;
    let mut first = [0; 64];
    let read = stream.read(&mut first)?;
    if first[..read].starts_with(b"HTTP/1.1 200") {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "chromedriver answered {:?}",
            String::from_utf8_lossy(&first[..read])
        )))
    }
}

async fn wait_until_ready(driver: &mut Process, addr: SocketAddr) {
    let http = reqwest::Client::new();
    let url = format!("http://{addr}/status");
    wait_for(SLOW, "chromedriver answers /status ready", async || {
        if !driver.running() {
            panic!(
                "chromedriver exited before it was ready:\n{}\n{}",
                driver.stdout.all().join("\n"),
                driver.stderr.all().join("\n")
            );
        }
        let reply = http.get(&url).send().await.map_err(|e| e.to_string())?;
        let body = reply.bytes().await.map_err(|e| e.to_string())?;
        let status: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        if status["value"]["ready"] == true {
            Ok(())
        } else {
            Err(status.to_string())
        }
    })
    .await
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// One axe-core rule the page breaks, with the elements that break it.
#[derive(Debug, Clone, Deserialize)]
pub struct Violation {
    /// The rule, such as `image-alt` or `color-contrast`.
    pub id: String,
    /// `minor`, `moderate`, `serious` or `critical` (absent when axe does
    /// not rate it).
    pub impact: Option<String>,
    /// What the rule asks for, in one sentence.
    pub help: String,
    /// Deque's page explaining the rule and its fixes.
    #[serde(rename = "helpUrl")]
    pub help_url: String,
    /// The elements that break it.
    pub nodes: Vec<ViolationNode>,
}

/// An element breaking an axe-core rule.
#[derive(Debug, Clone, Deserialize)]
pub struct ViolationNode {
    /// CSS selectors reaching the element, outermost first (one, unless it
    /// sits in a shadow root or a frame).
    pub target: Vec<String>,
    /// The element's opening HTML, as axe quotes it.
    pub html: String,
    /// axe's account of what to fix on this element.
    #[serde(rename = "failureSummary")]
    pub failure_summary: Option<String>,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let impact = self.impact.as_deref().unwrap_or("unrated");
        writeln!(
            f,
            "{} ({impact}): {} <{}>",
            self.id, self.help, self.help_url
        )?;
        for node in &self.nodes {
            write!(f, "  at {}: {}", node.target.join(" >>> "), node.html)?;
            writeln!(f)?;
        }
        Ok(())
    }
}

/// Every violation, one paragraph each, for a test's failure message.
pub fn report(violations: &[Violation]) -> String {
    violations.iter().map(ToString::to_string).collect()
}

/// Runs axe-core on the page `client` shows, with the rules tagged
/// [`AXE_TAGS`] (WCAG 2.0 and 2.1, levels A and AA), and returns the
/// violations. Injects the vendored axe-core first unless the page already
/// has it. Fails the test when the script cannot run or axe reports an
/// error.
pub async fn axe(client: &Client) -> Vec<Violation> {
    let loaded = client
        .execute("return typeof window.axe === 'object';", vec![])
        .await
        .expect("the browser runs a script");
    if loaded != true {
        // WebDriver runs the source as a function body; axe's UMD wrapper
        // then sets `window.axe`.
        client
            .execute(AXE_SOURCE, vec![])
            .await
            .expect("the browser runs axe-core's source");
    }
    let result = client
        .execute_async(AXE_RUN, vec![json!(AXE_TAGS)])
        .await
        .expect("the browser runs axe");
    if let Some(error) = result.get("error") {
        panic!("axe failed on the page: {error}");
    }
    serde_json::from_value(result["violations"].clone())
        .unwrap_or_else(|e| panic!("axe's violations are read ({e}): {result}"))
}

/// Runs axe on the whole document and hands back only what [`Violation`]
/// holds (the full result repeats every passing check). Shadow-DOM and
/// frame targets are arrays of selectors; they are joined into one string
/// per hop.
const AXE_RUN: &str = r#"
const tags = arguments[0];
const done = arguments[arguments.length - 1];
axe.run(document, {
  runOnly: { type: 'tag', values: tags },
  resultTypes: ['violations'],
}).then((results) => done({
  violations: results.violations.map((v) => ({
    id: v.id,
    impact: v.impact,
    help: v.help,
    helpUrl: v.helpUrl,
    nodes: v.nodes.map((n) => ({
      target: n.target.map((t) => Array.isArray(t) ? t.join(' >>> ') : String(t)),
      html: n.html,
      failureSummary: n.failureSummary,
    })),
  })),
}), (error) => done({ error: String(error && error.stack || error) }));
"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn violation() -> Violation {
        serde_json::from_value(json!({
            "id": "image-alt",
            "impact": "critical",
            "help": "Images must have alternative text",
            "helpUrl": "https://dequeuniversity.com/rules/axe/4.14/image-alt",
            "nodes": [{
                "target": ["#logo"],
                "html": "<img id=\"logo\" src=\"a.png\">",
                "failureSummary": "Fix any of the following: ..."
            }]
        }))
        .expect("axe's shape is read")
    }

    #[test]
    fn a_report_names_the_rule_its_impact_and_each_element() {
        let text = report(&[violation()]);
        assert!(text.starts_with("image-alt (critical): Images must have alternative text"));
        assert!(
            text.contains("at #logo: <img id=\"logo\" src=\"a.png\">"),
            "{text}"
        );
    }

    #[test]
    fn the_vendored_axe_core_is_the_version_vendor_md_names() {
        assert!(AXE_SOURCE.starts_with("/*! axe v4.14.1"));
    }

    /// Process ids whose command line mentions `needle`.
    fn processes_naming(needle: &str) -> Vec<u32> {
        std::fs::read_dir("/proc")
            .expect("/proc is read")
            .filter_map(|entry| {
                let entry = entry.ok()?;
                let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
                let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
                String::from_utf8_lossy(&cmdline)
                    .contains(needle)
                    .then_some(pid)
            })
            .collect()
    }

    #[tokio::test]
    async fn dropping_the_browser_ends_chromium_and_chromedriver() {
        let browser = Browser::start().await;
        let profile = browser.profile_dir().display().to_string();
        let driver = browser.driver_pid();
        assert!(
            !processes_naming(&profile).is_empty(),
            "Chromium runs with the profile {profile}"
        );
        let (width, height) = browser
            .client()
            .get_window_size()
            .await
            .expect("the window size is read");
        assert_eq!((width, height), (WINDOW.0.into(), WINDOW.1.into()));

        drop(browser);
        assert!(
            !Path::new(&format!("/proc/{driver}")).exists(),
            "chromedriver ({driver}) is gone"
        );
        crate::eventually("no Chromium process names the profile", async || {
            processes_naming(&profile).is_empty()
        })
        .await;
        assert!(!Path::new(&profile).exists(), "the profile is removed");
    }
}
