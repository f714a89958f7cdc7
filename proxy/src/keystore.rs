//! The key store: the current key set behind `ArcSwap`, and its refreshing.
//!
//! ```text
//!   requests ──load()──▶ ArcSwap<Snapshot> ◀──store()── refresh (one at a time)
//!                              ▲                          ▲            ▲
//!                        never blocks            background loop   unknown kid
//!                                               (TTL ± jitter,    (single flight,
//!                                                backoff)          ≥ min interval)
//! ```
//!
//! Readers never wait on a fetch they are not owed. A token with an unknown
//! kid may wait for one refresh, so a rotated key works on its first
//! request; but at most one fetch runs at a time and at most one per
//! minimum interval is started for unknown kids, so a flood of random kids
//! costs one fetch per interval, not thousands. An unknown kid that arrives
//! inside the interval is answered at once (401) and a fetch is scheduled
//! for the earliest allowed moment, so the next request with it succeeds.
//!
//! The negative cache remembers only kids that a *completed* fetch did not
//! contain, and only until the next fetch is allowed: it saves scheduling a
//! fetch for a kid that was just looked for, and can never delay a key by
//! more than one minimum interval after its first request.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use rand::Rng;
// Tokio's clock, so tests can run the refresh logic on paused time; it is
// `std::time::Instant` underneath.
use tokio::time::Instant;

use crate::fetch::{FetchError, KeySource};
use crate::jwks::{KeySet, VerifyingKey, parse_jwks};
use crate::metrics as m;

/// Bounded so a kid flood cannot grow memory.
const NEGATIVE_CACHE_SIZE: usize = 4096;
/// First retry after a failed fetch; doubles up to the cap.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// Retries never wait longer than this (or the TTL, if shorter).
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// What a 503 for missing keys tells the client to wait.
pub const RETRY_AFTER: Duration = Duration::from_secs(5);

/// The keys in force and when they were fetched.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub set: KeySet,
    /// Last successful fetch; `None` before the first one.
    pub fetched_at: Option<Instant>,
}

/// The answer to "which key verifies this kid?".
#[derive(Debug)]
pub enum KeyLookup {
    Found(Arc<VerifyingKey>),
    UnknownKid,
    /// No usable keys: never fetched, or older than the max age.
    Unavailable,
}

#[derive(Debug)]
pub struct KeyStore {
    current: ArcSwap<Snapshot>,
    /// A PEM key (`CLERK_JWT_KEY`) verifies any kid the JWKS does not list.
    pem_key: Option<Arc<VerifyingKey>>,
    source: Option<KeySource>,
    max_age: Duration,
    min_refresh_interval: Duration,
    /// Serialises fetches: the single flight.
    fetch_lock: tokio::sync::Mutex<Option<Instant>>,
    /// Completed fetch attempts; lets a waiter see that someone else fetched.
    attempts: AtomicU64,
    last_fetch_failed: AtomicBool,
    /// Kid → when the fetch that did not contain it completed.
    unknown_kids: quick_cache::sync::Cache<String, Instant>,
    /// A deferred unknown-kid fetch is waiting for its moment.
    fetch_scheduled: AtomicBool,
    /// Stands in for the last success before the first one, so the age
    /// gauge grows (and alerts fire) when keys never loaded at all.
    started: Instant,
}

impl KeyStore {
    pub fn new(
        source: Option<KeySource>,
        pem_key: Option<VerifyingKey>,
        max_age: Duration,
        min_refresh_interval: Duration,
    ) -> Self {
        KeyStore {
            current: ArcSwap::from_pointee(Snapshot::default()),
            pem_key: pem_key.map(Arc::new),
            source,
            max_age,
            min_refresh_interval,
            fetch_lock: tokio::sync::Mutex::new(None),
            attempts: AtomicU64::new(0),
            last_fetch_failed: AtomicBool::new(false),
            unknown_kids: quick_cache::sync::Cache::new(NEGATIVE_CACHE_SIZE),
            fetch_scheduled: AtomicBool::new(false),
            started: Instant::now(),
        }
    }

    pub fn has_source(&self) -> bool {
        self.source.is_some()
    }

    /// Whether the fetched keys may still be used.
    fn fresh(&self, snapshot: &Snapshot) -> bool {
        snapshot
            .fetched_at
            .is_some_and(|at| at.elapsed() <= self.max_age)
    }

    /// Whether any key can verify right now (readiness, and 503 vs 401).
    pub fn usable(&self) -> bool {
        self.pem_key.is_some() || self.fresh(&self.current.load())
    }

    /// Why the store is not usable, for `/readyz`.
    pub fn unusable_reason(&self) -> Option<&'static str> {
        if self.usable() {
            return None;
        }
        Some(if self.current.load().fetched_at.is_none() {
            "keys not loaded"
        } else {
            "keys stale"
        })
    }

    /// The key for `kid` in the current set, without waiting.
    pub fn lookup_now(&self, kid: &str) -> KeyLookup {
        let snapshot = self.current.load();
        if self.fresh(&snapshot)
            && let Some(key) = snapshot.set.keys.get(kid)
        {
            return KeyLookup::Found(Arc::clone(key));
        }
        if let Some(key) = &self.pem_key {
            return KeyLookup::Found(Arc::clone(key));
        }
        if self.fresh(&snapshot) {
            KeyLookup::UnknownKid
        } else {
            KeyLookup::Unavailable
        }
    }

    /// The key for `kid` in the fetched set, if that set may still be used.
    fn fetched_key(&self, kid: &str) -> Option<Arc<VerifyingKey>> {
        let snapshot = self.current.load();
        if !self.fresh(&snapshot) {
            return None;
        }
        snapshot.set.keys.get(kid).cloned()
    }

    /// The key for `kid`, refreshing once if the kid is new to us.
    ///
    /// The JWKS is asked before the PEM key stands in: otherwise a key
    /// rotated into the JWKS would never be fetched while a PEM key is set.
    pub async fn lookup(self: &Arc<Self>, kid: &str) -> KeyLookup {
        if let Some(key) = self.fetched_key(kid) {
            return KeyLookup::Found(key);
        }
        if self.source.is_none() {
            return self.lookup_now(kid);
        }
        let looked_for_recently = self
            .unknown_kids
            .get(kid)
            .is_some_and(|absent_at| absent_at.elapsed() < self.min_refresh_interval);
        if looked_for_recently {
            return self.lookup_now(kid);
        }
        match self.refresh(RefreshCause::UnknownKid).await {
            Refreshed::Fetched(ok) => {
                if let Some(key) = self.fetched_key(kid) {
                    return KeyLookup::Found(key);
                }
                if ok {
                    self.unknown_kids.insert(kid.to_owned(), Instant::now());
                }
            }
            Refreshed::TooSoon(allowed_at) => self.schedule_refresh(allowed_at),
        }
        self.lookup_now(kid)
    }

    /// Fetches at `at` (one deferred fetch at a time), for an unknown kid
    /// that arrived inside the minimum interval.
    fn schedule_refresh(self: &Arc<Self>, at: Instant) {
        if self.fetch_scheduled.swap(true, Ordering::AcqRel) {
            return;
        }
        let store = Arc::clone(self);
        tokio::spawn(async move {
            tokio::time::sleep_until(at).await;
            store.fetch_scheduled.store(false, Ordering::Release);
            store.refresh(RefreshCause::UnknownKid).await;
        });
    }

    /// Fetches and swaps in a new key set, one fetch at a time.
    ///
    /// A scheduled refresh always fetches. An unknown-kid refresh joins a
    /// fetch that completed while it queued, and is refused
    /// ([`Refreshed::TooSoon`]) inside the minimum interval.
    pub async fn refresh(&self, cause: RefreshCause) -> Refreshed {
        let Some(source) = &self.source else {
            return Refreshed::Fetched(false);
        };
        let seen = self.attempts.load(Ordering::Acquire);
        let mut last_attempt = self.fetch_lock.lock().await;
        if cause == RefreshCause::UnknownKid {
            if self.attempts.load(Ordering::Acquire) != seen {
                // Someone fetched while we queued: their result is ours.
                return Refreshed::Fetched(!self.last_fetch_failed());
            }
            if let Some(at) = *last_attempt {
                let allowed_at = at + self.min_refresh_interval;
                if Instant::now() < allowed_at {
                    return Refreshed::TooSoon(allowed_at);
                }
            }
        }
        *last_attempt = Some(Instant::now());
        let outcome = source
            .fetch()
            .await
            .and_then(|body| parse_jwks(&body).map_err(FetchError::Document));
        match outcome {
            Ok((set, skipped)) => {
                for key in &skipped {
                    tracing::warn!(kid = ?key.kid, reason = %key.reason, "skipped JWKS key");
                }
                metrics::counter!(m::JWKS_SKIPPED_KEYS).increment(skipped.len() as u64);
                metrics::counter!(m::JWKS_FETCHES, "result" => "success", "reason" => "ok")
                    .increment(1);
                metrics::gauge!(m::JWKS_KEYS).set(set.keys.len() as f64);
                tracing::info!(keys = set.keys.len(), cause = cause.as_str(), "JWKS loaded");
                self.current.store(Arc::new(Snapshot {
                    set,
                    fetched_at: Some(Instant::now()),
                }));
                self.last_fetch_failed.store(false, Ordering::Release);
            }
            Err(err) => {
                metrics::counter!(m::JWKS_FETCHES, "result" => "error", "reason" => err.reason())
                    .increment(1);
                tracing::warn!(error = %err, cause = cause.as_str(), "JWKS fetch failed; keeping current keys");
                self.last_fetch_failed.store(true, Ordering::Release);
            }
        }
        self.attempts.fetch_add(1, Ordering::AcqRel);
        Refreshed::Fetched(!self.last_fetch_failed())
    }

    /// Completed fetch attempts so far.
    pub fn fetch_attempts(&self) -> u64 {
        self.attempts.load(Ordering::Acquire)
    }

    /// Keeps the key set fresh until the process stops.
    pub async fn run_refresh_loop(self: Arc<Self>, ttl: Duration) {
        if self.source.is_none() {
            return;
        }
        let cap = MAX_BACKOFF.min(ttl);
        let mut backoff = FIRST_BACKOFF.min(cap);
        loop {
            let ok = self.refresh(RefreshCause::Scheduled).await == Refreshed::Fetched(true);
            let delay = if ok {
                backoff = FIRST_BACKOFF.min(cap);
                jittered(ttl)
            } else {
                let delay = backoff;
                backoff = (backoff * 2).min(cap);
                delay
            };
            tokio::time::sleep(delay).await;
        }
    }

    pub fn last_fetch_failed(&self) -> bool {
        self.last_fetch_failed.load(Ordering::Acquire)
    }

    /// Updates the gauges that depend on the clock; called before a scrape.
    pub fn export_gauges(&self) {
        let snapshot = self.current.load();
        let age = snapshot
            .fetched_at
            .unwrap_or(self.started)
            .elapsed()
            .as_secs_f64();
        if self.source.is_some() {
            metrics::gauge!(m::JWKS_LAST_SUCCESS_AGE).set(age);
        }
        let stale = snapshot.fetched_at.is_some() && self.last_fetch_failed();
        metrics::gauge!(m::JWKS_STALE).set(if stale { 1.0 } else { 0.0 });
        let count = if self.fresh(&snapshot) {
            snapshot.set.keys.len()
        } else {
            0
        };
        metrics::gauge!(m::JWKS_KEYS).set((count + usize::from(self.pem_key.is_some())) as f64);
    }
}

/// What a refresh did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refreshed {
    /// A fetch ran (ours, or one we waited for); whether it succeeded.
    Fetched(bool),
    /// Inside the minimum interval: no fetch; the next one is allowed then.
    TooSoon(Instant),
}

/// Why a refresh was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshCause {
    Scheduled,
    UnknownKid,
}

impl RefreshCause {
    fn as_str(self) -> &'static str {
        match self {
            RefreshCause::Scheduled => "scheduled",
            RefreshCause::UnknownKid => "unknown_kid",
        }
    }
}

/// ±10 % so a fleet of proxies started together does not fetch in lockstep.
fn jittered(ttl: Duration) -> Duration {
    let factor = rand::rng().random_range(0.9..=1.1);
    ttl.mul_f64(factor)
}

#[cfg(test)]
mod tests;
