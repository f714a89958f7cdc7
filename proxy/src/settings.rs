//! Settings: one place for every knob, its default and why.
//!
//! Sources, lowest to highest precedence: the defaults below, a TOML file
//! (`config/default.toml`, or `--config PATH`), then the environment
//! (`PROXY_<KEY>`, plus the aliases the existing deployment already sets,
//! such as `CLERK_ISSUER_URL`). Every problem is collected and reported
//! together, one line per setting, so an operator fixes them in one pass.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use config::{Config, Environment, File, FileFormat};

use crate::cors::CorsPolicy;
use crate::path::PublicPaths;

/// Where the load balancer sends traffic.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:8080";
/// Metrics and health, apart from data so a scrape never competes with traffic.
pub const DEFAULT_ADMIN_LISTEN: &str = "0.0.0.0:9090";
/// The app container shares the task's network namespace and listens on loopback only.
pub const DEFAULT_UPSTREAM: &str = "http://127.0.0.1:3000";
/// The app's health endpoint is the only thing a load balancer needs without a token.
pub const DEFAULT_PUBLIC_PATHS: &str = "/api/health";
/// Clerk rotates keys rarely; an hour keeps fetches negligible while a
/// rotated key is still picked up at once by the unknown-kid refresh.
pub const DEFAULT_JWKS_CACHE_TTL_SECS: u64 = 3600;
/// A day of riding out a JWKS outage on keys we already trust, after which
/// refusing service is safer than trusting keys that may have been revoked.
pub const DEFAULT_JWKS_CACHE_MAX_AGE_SECS: u64 = 86_400;
/// Kid floods must not become fetch floods: one unknown-kid fetch per interval.
pub const DEFAULT_JWKS_MIN_REFRESH_INTERVAL_SECS: u64 = 10;
/// A JWKS fetch that takes longer than this is treated as a failure.
pub const DEFAULT_JWKS_FETCH_TIMEOUT_SECS: u64 = 10;
/// Clerk's own default; jsonwebtoken's 60 s would accept tokens a minute old.
pub const DEFAULT_CLOCK_LEEWAY_SECS: u64 = 5;
/// Uploads of large CSVs take a while; beyond this the caller gets 504.
pub const DEFAULT_UPSTREAM_TIMEOUT_SECS: u64 = 60;
/// The upstream is on loopback: a connect that takes seconds means it is gone.
pub const DEFAULT_UPSTREAM_CONNECT_TIMEOUT_SECS: u64 = 5;
/// Slow-loris protection: a client gets this long to send its request head,
/// counted from accept for a new connection and from the first byte of the
/// head for a later one.
pub const DEFAULT_HEADER_READ_TIMEOUT_SECS: u64 = 10;
/// Idle keep-alive time between requests. It must exceed the load
/// balancer's idle timeout (65 s in `infra/alb.tf`; 60 s is AWS's default)
/// so the load balancer, not the proxy, closes idle connections: a target
/// that closes first races the load balancer's next request, which then
/// gets a 502 the proxy never sees (AWS: "Connection idle timeout").
pub const DEFAULT_IDLE_TIMEOUT_SECS: u64 = 75;
/// A request body that sends no byte for this long gets 408, and a client
/// that reads no byte of its response for this long is disconnected. Below
/// the load balancer's idle timeout, so the proxy answers before the load
/// balancer gives up on the connection.
pub const DEFAULT_BODY_IDLE_TIMEOUT_SECS: u64 = 30;
/// AWS's default idle timeout for an Application Load Balancer: an idle
/// timeout at or below it is reported at startup.
const ALB_DEFAULT_IDLE_TIMEOUT_SECS: u64 = 60;
/// Below ECS's 30 s stop timeout so in-flight requests finish before SIGKILL.
pub const DEFAULT_DRAIN_TIMEOUT_SECS: u64 = 20;
/// Session tokens live about a minute; this many covers a busy task's users
/// while staying around a megabyte (entries are keyed by a SHA-256 digest).
pub const DEFAULT_TOKEN_CACHE_SIZE: usize = 10_000;
/// The app has no use for the credential, and a token in app logs is a leak.
pub const DEFAULT_FORWARD_CREDENTIALS: bool = false;
/// One JSON line per request, as nginx's `access_log` is on by default.
pub const DEFAULT_ACCESS_LOG: bool = true;
pub const DEFAULT_LOG: &str = "info";

/// Every key the proxy understands, with the environment names that set it.
/// The first name is `PROXY_<KEY>`; a second one is the deployment's alias.
const KEYS: &[(&str, &[&str])] = &[
    ("listen", &["PROXY_LISTEN"]),
    ("admin_listen", &["PROXY_ADMIN_LISTEN"]),
    ("upstream", &["PROXY_UPSTREAM"]),
    ("public_paths", &["PROXY_PUBLIC_PATHS"]),
    ("jwks_url", &["PROXY_JWKS_URL", "CLERK_JWKS_URL"]),
    ("jwks_file", &["PROXY_JWKS_FILE"]),
    ("jwt_key", &["PROXY_JWT_KEY", "CLERK_JWT_KEY"]),
    ("jwks_ca_file", &["PROXY_JWKS_CA_FILE"]),
    ("issuer", &["PROXY_ISSUER", "CLERK_ISSUER_URL"]),
    ("audience", &["PROXY_AUDIENCE", "CLERK_AUDIENCE"]),
    (
        "authorized_parties",
        &["PROXY_AUTHORIZED_PARTIES", "CLERK_AUTHORIZED_PARTIES"],
    ),
    (
        "jwks_cache_ttl",
        &["PROXY_JWKS_CACHE_TTL", "JWKS_CACHE_TTL"],
    ),
    (
        "jwks_cache_max_age",
        &["PROXY_JWKS_CACHE_MAX_AGE", "JWKS_CACHE_MAX_AGE"],
    ),
    (
        "jwks_min_refresh_interval",
        &["PROXY_JWKS_MIN_REFRESH_INTERVAL"],
    ),
    ("jwks_fetch_timeout", &["PROXY_JWKS_FETCH_TIMEOUT"]),
    ("clock_leeway", &["PROXY_CLOCK_LEEWAY"]),
    ("upstream_timeout", &["PROXY_UPSTREAM_TIMEOUT"]),
    (
        "upstream_connect_timeout",
        &["PROXY_UPSTREAM_CONNECT_TIMEOUT"],
    ),
    ("header_read_timeout", &["PROXY_HEADER_READ_TIMEOUT"]),
    ("idle_timeout", &["PROXY_IDLE_TIMEOUT"]),
    ("body_idle_timeout", &["PROXY_BODY_IDLE_TIMEOUT"]),
    ("cors_allowed_origins", &["PROXY_CORS_ALLOWED_ORIGINS"]),
    ("drain_timeout", &["PROXY_DRAIN_TIMEOUT"]),
    ("token_cache_size", &["PROXY_TOKEN_CACHE_SIZE"]),
    ("forward_credentials", &["PROXY_FORWARD_CREDENTIALS"]),
    ("log", &["PROXY_LOG"]),
    ("access_log", &["PROXY_ACCESS_LOG"]),
];

/// Where the verification keys come from; at least one is required.
#[derive(Debug, Clone, Default)]
pub struct KeySources {
    pub jwks_url: Option<reqwest::Url>,
    pub jwks_file: Option<PathBuf>,
    /// PEM text of Clerk's public key, for networkless verification.
    pub jwt_key_pem: Option<String>,
    pub jwks_ca_file: Option<PathBuf>,
}

/// The claims a token must carry, beyond its signature.
#[derive(Debug, Clone)]
pub struct ClaimRules {
    pub issuer: String,
    pub audiences: Option<Vec<String>>,
    pub authorized_parties: Option<Vec<String>>,
    pub leeway: Duration,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub admin_listen: SocketAddr,
    pub upstream: http::Uri,
    pub public_paths: PublicPaths,
    pub keys: KeySources,
    pub claims: ClaimRules,
    pub jwks_cache_ttl: Duration,
    pub jwks_cache_max_age: Duration,
    pub jwks_min_refresh_interval: Duration,
    pub jwks_fetch_timeout: Duration,
    pub upstream_timeout: Duration,
    pub upstream_connect_timeout: Duration,
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub body_idle_timeout: Duration,
    /// Origins allowed to call cross-origin; `None`: no CORS headers at all.
    pub cors: Option<CorsPolicy>,
    pub drain_timeout: Duration,
    pub token_cache_size: usize,
    pub forward_credentials: bool,
    pub log: String,
    /// Write the per-request `"request"` log line (`PROXY_ACCESS_LOG`);
    /// off, only that line goes: metrics and every other line stay.
    pub access_log: bool,
}

/// Non-fatal findings worth a line in the log at startup.
#[derive(Debug, Default)]
pub struct Warnings(pub Vec<String>);

/// Every problem found, one line each.
#[derive(Debug)]
pub struct SettingsError(pub Vec<String>);

impl std::fmt::Display for SettingsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, line) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{line}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SettingsError {}

impl Settings {
    /// Reads the file (if any) and the given environment.
    ///
    /// The environment is passed in, not read from the process, so tests
    /// never touch global state.
    pub fn load(
        file: Option<&Path>,
        file_required: bool,
        env: &HashMap<String, String>,
    ) -> Result<(Settings, Warnings), SettingsError> {
        let mut errors = Vec::new();
        let raw = match read_sources(file, file_required, env, &mut errors) {
            Some(raw) => raw,
            None => return Err(SettingsError(errors)),
        };
        let mut reader = Reader { raw, errors };
        let settings = reader.settings();
        let mut warnings = Warnings::default();
        if reader.errors.is_empty()
            && let Some(settings) = &settings
            && settings.claims.authorized_parties.is_none()
        {
            warnings.0.push(
                "CLERK_AUTHORIZED_PARTIES is unset: the azp claim is not checked \
                         (Clerk calls this check essential against CSRF)"
                    .to_owned(),
            );
        }
        if reader.errors.is_empty()
            && let Some(settings) = &settings
            && settings.idle_timeout.as_secs() <= ALB_DEFAULT_IDLE_TIMEOUT_SECS
        {
            warnings.0.push(format!(
                "PROXY_IDLE_TIMEOUT is {} s: it must be longer than the load balancer's idle \
                 timeout (60 s by default on AWS), or the load balancer answers 502 when it \
                 reuses a connection the proxy is closing",
                settings.idle_timeout.as_secs()
            ));
        }
        match settings {
            Some(settings) if reader.errors.is_empty() => Ok((settings, warnings)),
            _ => Err(SettingsError(reader.errors)),
        }
    }
}

/// Merges file and environment into plain strings per key.
fn read_sources(
    file: Option<&Path>,
    file_required: bool,
    env: &HashMap<String, String>,
    errors: &mut Vec<String>,
) -> Option<HashMap<String, String>> {
    let mut builder = Config::builder();
    if let Some(path) = file {
        builder = builder.add_source(
            File::from(path)
                .format(FileFormat::Toml)
                .required(file_required),
        );
    }
    let proxy_env: HashMap<String, String> = env
        .iter()
        .filter(|(name, _)| name.starts_with("PROXY_"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    builder = builder.add_source(
        Environment::with_prefix("PROXY")
            .prefix_separator("_")
            .separator("__")
            .source(Some(proxy_env)),
    );
    let config = match builder.build() {
        Ok(config) => config,
        Err(err) => {
            errors.push(format!("cannot read settings: {err}"));
            return None;
        }
    };
    let table = match config.cache.into_table() {
        Ok(table) => table,
        Err(err) => {
            errors.push(format!("cannot read settings: {err}"));
            return None;
        }
    };
    let mut raw = HashMap::new();
    for (key, value) in table {
        let Some((_, names)) = KEYS.iter().find(|(known, _)| *known == key) else {
            errors.push(format!(
                "unknown setting {key} (PROXY_{}): check its spelling",
                key.to_uppercase()
            ));
            continue;
        };
        let text = match value.clone().into_array() {
            Ok(items) => items
                .into_iter()
                .map(|item| item.into_string().unwrap_or_default())
                .collect::<Vec<_>>()
                .join(","),
            Err(_) => match value.into_string() {
                Ok(text) => text,
                Err(err) => {
                    errors.push(format!("setting {key} ({}): {err}", names[0]));
                    continue;
                }
            },
        };
        raw.insert(key, text);
    }
    // Aliases: the deployment's own names. Both spellings with different
    // values is ambiguous, so it is an error rather than a silent choice.
    for (key, names) in KEYS {
        let [proxy_name, alias] = names else { continue };
        let Some(alias_value) = env.get(*alias) else {
            continue;
        };
        match env.get(*proxy_name) {
            Some(proxy_value) if proxy_value != alias_value => errors.push(format!(
                "setting {key}: {proxy_name} and {alias} are both set, to different values"
            )),
            _ => {
                raw.insert((*key).to_owned(), alias_value.clone());
            }
        }
    }
    Some(raw)
}

struct Reader {
    raw: HashMap<String, String>,
    errors: Vec<String>,
}

impl Reader {
    fn env_names(key: &str) -> String {
        KEYS.iter()
            .find(|(known, _)| *known == key)
            .map(|(_, names)| names.last().copied().unwrap_or(""))
            .unwrap_or("")
            .to_owned()
    }

    fn fail(&mut self, key: &str, problem: impl std::fmt::Display) {
        let env = Self::env_names(key);
        self.errors
            .push(format!("setting {key} ({env}): {problem}"));
    }

    /// The value, trimmed; empty counts as unset, as `FOO=` does in a shell.
    fn text(&self, key: &str) -> Option<String> {
        self.raw
            .get(key)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    fn parsed<T>(&mut self, key: &str, default: &str, what: &str) -> Option<T>
    where
        T: std::str::FromStr,
        T::Err: std::fmt::Display,
    {
        let text = self.text(key).unwrap_or_else(|| default.to_owned());
        match text.parse() {
            Ok(value) => Some(value),
            Err(err) => {
                self.fail(key, format!("expected {what}, got {text:?} ({err})"));
                None
            }
        }
    }

    fn seconds(&mut self, key: &str, default: u64, allow_zero: bool) -> Option<Duration> {
        let secs: u64 = self.parsed(key, &default.to_string(), "whole seconds")?;
        if secs == 0 && !allow_zero {
            self.fail(key, "must be at least 1 second");
            return None;
        }
        Some(Duration::from_secs(secs))
    }

    fn list(&self, key: &str) -> Option<Vec<String>> {
        let items: Vec<String> = self
            .text(key)?
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect();
        (!items.is_empty()).then_some(items)
    }

    fn settings(&mut self) -> Option<Settings> {
        let listen = self.parsed("listen", DEFAULT_LISTEN, "an address like 0.0.0.0:8080");
        let admin_listen = self.parsed(
            "admin_listen",
            DEFAULT_ADMIN_LISTEN,
            "an address like 0.0.0.0:9090",
        );
        let upstream = self.upstream();
        let public_paths = self.public_paths();
        let keys = self.key_sources();
        let claims = self.claims();
        let jwks_cache_ttl = self.seconds("jwks_cache_ttl", DEFAULT_JWKS_CACHE_TTL_SECS, false);
        let jwks_cache_max_age =
            self.seconds("jwks_cache_max_age", DEFAULT_JWKS_CACHE_MAX_AGE_SECS, false);
        let jwks_min_refresh_interval = self.seconds(
            "jwks_min_refresh_interval",
            DEFAULT_JWKS_MIN_REFRESH_INTERVAL_SECS,
            true,
        );
        let jwks_fetch_timeout =
            self.seconds("jwks_fetch_timeout", DEFAULT_JWKS_FETCH_TIMEOUT_SECS, false);
        let upstream_timeout =
            self.seconds("upstream_timeout", DEFAULT_UPSTREAM_TIMEOUT_SECS, false);
        let upstream_connect_timeout = self.seconds(
            "upstream_connect_timeout",
            DEFAULT_UPSTREAM_CONNECT_TIMEOUT_SECS,
            false,
        );
        let header_read_timeout = self.seconds(
            "header_read_timeout",
            DEFAULT_HEADER_READ_TIMEOUT_SECS,
            false,
        );
        let idle_timeout = self.seconds("idle_timeout", DEFAULT_IDLE_TIMEOUT_SECS, false);
        let body_idle_timeout =
            self.seconds("body_idle_timeout", DEFAULT_BODY_IDLE_TIMEOUT_SECS, false);
        let cors = self.cors();
        let drain_timeout = self.seconds("drain_timeout", DEFAULT_DRAIN_TIMEOUT_SECS, true);
        let token_cache_size: Option<usize> = self.parsed(
            "token_cache_size",
            &DEFAULT_TOKEN_CACHE_SIZE.to_string(),
            "a number of entries",
        );
        let forward_credentials = self.parsed(
            "forward_credentials",
            &DEFAULT_FORWARD_CREDENTIALS.to_string(),
            "true or false",
        );
        let log = self.text("log").unwrap_or_else(|| DEFAULT_LOG.to_owned());
        let access_log = self.parsed(
            "access_log",
            &DEFAULT_ACCESS_LOG.to_string(),
            "true or false",
        );
        if let (Some(ttl), Some(max_age)) = (jwks_cache_ttl, jwks_cache_max_age)
            && max_age < ttl
        {
            self.fail(
                "jwks_cache_max_age",
                "must not be shorter than JWKS_CACHE_TTL, or keys expire between refreshes",
            );
        }
        Some(Settings {
            listen: listen?,
            admin_listen: admin_listen?,
            upstream: upstream?,
            public_paths: public_paths?,
            keys: keys?,
            claims: claims?,
            jwks_cache_ttl: jwks_cache_ttl?,
            jwks_cache_max_age: jwks_cache_max_age?,
            jwks_min_refresh_interval: jwks_min_refresh_interval?,
            jwks_fetch_timeout: jwks_fetch_timeout?,
            upstream_timeout: upstream_timeout?,
            upstream_connect_timeout: upstream_connect_timeout?,
            header_read_timeout: header_read_timeout?,
            idle_timeout: idle_timeout?,
            body_idle_timeout: body_idle_timeout?,
            cors: cors?,
            drain_timeout: drain_timeout?,
            token_cache_size: token_cache_size?,
            forward_credentials: forward_credentials?,
            log,
            access_log: access_log?,
        })
    }

    fn upstream(&mut self) -> Option<http::Uri> {
        let text = self
            .text("upstream")
            .unwrap_or_else(|| DEFAULT_UPSTREAM.to_owned());
        let uri: http::Uri = match text.parse() {
            Ok(uri) => uri,
            Err(err) => {
                self.fail("upstream", format!("not a URL: {text:?} ({err})"));
                return None;
            }
        };
        let plain_origin = uri.scheme_str() == Some("http")
            && uri.authority().is_some()
            && matches!(uri.path(), "" | "/")
            && uri.query().is_none();
        if !plain_origin {
            self.fail(
                "upstream",
                format!("expected http://host:port with no path, got {text:?}"),
            );
            return None;
        }
        Some(uri)
    }

    fn cors(&mut self) -> Option<Option<CorsPolicy>> {
        let Some(entries) = self.list("cors_allowed_origins") else {
            return Some(None);
        };
        match CorsPolicy::parse(&entries) {
            Ok(policy) => Some(Some(policy)),
            Err(err) => {
                self.fail("cors_allowed_origins", err);
                None
            }
        }
    }

    fn public_paths(&mut self) -> Option<PublicPaths> {
        let entries = self
            .list("public_paths")
            .unwrap_or_else(|| vec![DEFAULT_PUBLIC_PATHS.to_owned()]);
        match PublicPaths::parse(&entries) {
            Ok(paths) => Some(paths),
            Err(err) => {
                self.fail("public_paths", err);
                None
            }
        }
    }

    fn key_sources(&mut self) -> Option<KeySources> {
        let mut sources = KeySources::default();
        let mut ok = true;
        if let Some(text) = self.text("jwks_url") {
            match reqwest::Url::parse(&text) {
                Ok(url) if url.scheme() == "https" => sources.jwks_url = Some(url),
                Ok(_) => {
                    self.fail("jwks_url", "must be an https:// URL");
                    ok = false;
                }
                Err(err) => {
                    self.fail("jwks_url", format!("not a URL: {err}"));
                    ok = false;
                }
            }
        }
        sources.jwks_file = self.text("jwks_file").map(PathBuf::from);
        sources.jwt_key_pem = self.text("jwt_key");
        sources.jwks_ca_file = self.text("jwks_ca_file").map(PathBuf::from);
        if sources.jwks_url.is_some() && sources.jwks_file.is_some() {
            self.fail(
                "jwks_file",
                "set either CLERK_JWKS_URL or PROXY_JWKS_FILE, not both",
            );
            ok = false;
        }
        let any_source = sources.jwks_url.is_some()
            || sources.jwks_file.is_some()
            || sources.jwt_key_pem.is_some();
        if ok && !any_source {
            self.errors.push(
                "no key source: set CLERK_JWKS_URL, PROXY_JWKS_FILE or CLERK_JWT_KEY".to_owned(),
            );
            ok = false;
        }
        ok.then_some(sources)
    }

    fn claims(&mut self) -> Option<ClaimRules> {
        let issuer = match self.text("issuer") {
            Some(issuer) => Some(issuer),
            None => {
                self.fail("issuer", "required: the exact iss of your Clerk instance");
                None
            }
        };
        let leeway = self.seconds("clock_leeway", DEFAULT_CLOCK_LEEWAY_SECS, true);
        Some(ClaimRules {
            issuer: issuer?,
            audiences: self.list("audience"),
            authorized_parties: self.list("authorized_parties"),
            leeway: leeway?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn minimal() -> Vec<(&'static str, &'static str)> {
        vec![
            ("CLERK_ISSUER_URL", "https://clerk.example"),
            (
                "CLERK_JWKS_URL",
                "https://clerk.example/.well-known/jwks.json",
            ),
        ]
    }

    #[test]
    fn defaults_apply_when_only_required_settings_are_given() {
        let (settings, warnings) = Settings::load(None, false, &env(&minimal())).expect("valid");
        assert_eq!(settings.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(settings.admin_listen.to_string(), DEFAULT_ADMIN_LISTEN);
        assert_eq!(settings.jwks_cache_ttl, Duration::from_secs(3600));
        assert_eq!(settings.claims.leeway, Duration::from_secs(5));
        assert!(settings.public_paths.is_public("/api/health"));
        assert!(!settings.forward_credentials);
        assert!(settings.access_log);
        assert_eq!(warnings.0.len(), 1, "azp warning expected");
    }

    #[test]
    fn aliases_and_proxy_names_both_work() {
        let mut pairs = minimal();
        pairs.push(("JWKS_CACHE_TTL", "60"));
        pairs.push(("PROXY_UPSTREAM_TIMEOUT", "7"));
        pairs.push((
            "CLERK_AUTHORIZED_PARTIES",
            "https://a.example, https://b.example",
        ));
        let (settings, warnings) = Settings::load(None, false, &env(&pairs)).expect("valid");
        assert_eq!(settings.jwks_cache_ttl, Duration::from_secs(60));
        assert_eq!(settings.upstream_timeout, Duration::from_secs(7));
        assert_eq!(
            settings.claims.authorized_parties.as_deref(),
            Some(
                &[
                    "https://a.example".to_owned(),
                    "https://b.example".to_owned()
                ][..]
            )
        );
        assert!(warnings.0.is_empty());
    }

    #[test]
    fn every_problem_is_reported_at_once_naming_the_variable() {
        let pairs = [
            ("JWKS_CACHE_TTL", "an hour"),
            ("PROXY_LISTEN", "localhost"),
            ("PROXY_UPSTREAM", "http://127.0.0.1:3000/app"),
        ];
        let err = Settings::load(None, false, &env(&pairs)).expect_err("invalid");
        let text = err.to_string();
        assert!(text.contains("JWKS_CACHE_TTL"), "{text}");
        assert!(text.contains("PROXY_LISTEN"), "{text}");
        assert!(text.contains("PROXY_UPSTREAM"), "{text}");
        assert!(text.contains("CLERK_ISSUER_URL"), "{text}");
        assert!(text.contains("no key source"), "{text}");
        assert_eq!(err.0.len(), 5, "{text}");
    }

    #[test]
    fn plain_http_jwks_url_is_refused() {
        let pairs = [
            ("CLERK_ISSUER_URL", "https://clerk.example"),
            ("CLERK_JWKS_URL", "http://clerk.example/jwks"),
        ];
        let err = Settings::load(None, false, &env(&pairs)).expect_err("invalid");
        assert!(err.to_string().contains("https"), "{err}");
    }

    #[test]
    fn conflicting_alias_values_are_an_error() {
        let mut pairs = minimal();
        pairs.push(("JWKS_CACHE_TTL", "60"));
        pairs.push(("PROXY_JWKS_CACHE_TTL", "120"));
        let err = Settings::load(None, false, &env(&pairs)).expect_err("invalid");
        assert!(err.to_string().contains("both set"), "{err}");
    }

    #[test]
    fn misspelt_settings_are_caught() {
        let mut pairs = minimal();
        pairs.push(("PROXY_UPSTREAM_TIMOUT", "5"));
        let err = Settings::load(None, false, &env(&pairs)).expect_err("invalid");
        assert!(err.to_string().contains("upstream_timout"), "{err}");
    }

    #[test]
    fn file_values_are_overridden_by_the_environment() {
        let dir = std::env::temp_dir().join(format!("rw-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("proxy.toml");
        std::fs::write(
            &path,
            "upstream_timeout = 30\npublic_paths = [\"/api/health\", \"/static/\"]\n",
        )
        .expect("write");
        let mut pairs = minimal();
        pairs.push(("PROXY_UPSTREAM_TIMEOUT", "9"));
        let (settings, _) = Settings::load(Some(&path), true, &env(&pairs)).expect("valid");
        assert_eq!(settings.upstream_timeout, Duration::from_secs(9));
        assert!(settings.public_paths.is_public("/static/app.js"));
        std::fs::remove_dir_all(&dir).ok();
    }
}
