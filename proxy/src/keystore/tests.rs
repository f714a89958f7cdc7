//! The key store on paused Tokio time: deterministic, and as fast as the
//! logic, whatever the intervals.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use proptest::prelude::*;
use tokio::time::Instant;

use super::*;
use crate::fetch::MemorySource;

fn jwks(kids: &[&str]) -> String {
    let n = URL_SAFE_NO_PAD.encode([0xc5u8; 256]);
    let keys: Vec<String> = kids
        .iter()
        .map(|kid| format!(r#"{{"kty":"RSA","kid":"{kid}","n":"{n}","e":"AQAB"}}"#))
        .collect();
    format!(r#"{{"keys":[{}]}}"#, keys.join(","))
}

struct Fixture {
    source: Arc<MemorySource>,
    store: Arc<KeyStore>,
}

impl Fixture {
    fn new(kids: &[&str], max_age: Duration, min_interval: Duration, fetch_time: Duration) -> Self {
        let source = Arc::new(MemorySource {
            document: std::sync::Mutex::new(jwks(kids)),
            fetch_time,
            started: std::sync::Mutex::default(),
        });
        let store = Arc::new(KeyStore::new(
            Some(KeySource::Memory(Arc::clone(&source))),
            None,
            max_age,
            min_interval,
        ));
        Fixture { source, store }
    }

    fn serve(&self, document: &str) {
        *self.source.document.lock().expect("lock") = document.to_owned();
    }

    fn fetches(&self) -> Vec<Instant> {
        self.source.started.lock().expect("lock").clone()
    }
}

const HOUR: Duration = Duration::from_secs(3600);
const TEN: Duration = Duration::from_secs(10);

fn found(lookup: &KeyLookup) -> bool {
    matches!(lookup, KeyLookup::Found(_))
}

#[tokio::test(start_paused = true)]
async fn keys_are_unavailable_until_the_first_fetch() {
    let f = Fixture::new(&["a"], HOUR, Duration::ZERO, Duration::ZERO);
    assert!(matches!(f.store.lookup_now("a"), KeyLookup::Unavailable));
    assert_eq!(f.store.unusable_reason(), Some("keys not loaded"));
    assert_eq!(
        f.store.refresh(RefreshCause::Scheduled).await,
        Refreshed::Fetched(true)
    );
    assert!(found(&f.store.lookup_now("a")));
    assert!(matches!(f.store.lookup_now("b"), KeyLookup::UnknownKid));
}

#[tokio::test(start_paused = true)]
async fn a_bad_document_leaves_the_current_keys_in_place() {
    let f = Fixture::new(&["a"], HOUR, Duration::ZERO, Duration::ZERO);
    f.store.refresh(RefreshCause::Scheduled).await;
    for bad in ["<html>", r#"{"keys":[]}"#, r#"{"keys":[{"kty":"EC"}]}"#] {
        f.serve(bad);
        assert_eq!(
            f.store.refresh(RefreshCause::Scheduled).await,
            Refreshed::Fetched(false),
            "{bad}"
        );
        assert!(f.store.last_fetch_failed());
        assert!(found(&f.store.lookup_now("a")), "{bad}");
    }
}

/// The field fault: a key added one second after start was refused for 30 s
/// (a kid first seen inside the interval went into a 30 s negative cache
/// although no fetch had looked for it).
#[tokio::test(start_paused = true)]
async fn a_key_rotated_in_inside_the_interval_is_accepted_once_a_fetch_may_run() {
    let f = Fixture::new(&["a"], HOUR, TEN, Duration::from_millis(50));
    f.store.refresh(RefreshCause::Scheduled).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    f.serve(&jwks(&["a", "b"]));
    let first = Instant::now();
    // Inside the interval: refused at once, without waiting.
    assert!(matches!(f.store.lookup("b").await, KeyLookup::UnknownKid));
    assert_eq!(Instant::now(), first, "the reader waited");
    // The deferred fetch runs when the interval allows: 10 s after the
    // first fetch, so 9 s (plus the fetch) after this request.
    tokio::time::sleep(Duration::from_secs(9) + Duration::from_millis(60)).await;
    assert!(found(&f.store.lookup("b").await));
    assert_eq!(f.fetches().len(), 2);
}

/// Another input of the same kind: the kid is asked for *before* the key is
/// published (a token minted by a new signer that the JWKS lags behind).
/// The fetch that lacked it may remember it as unknown only until the next
/// fetch is allowed, not for a fixed 30 s.
#[tokio::test(start_paused = true)]
async fn a_kid_a_fetch_did_not_contain_is_retried_after_one_interval() {
    let f = Fixture::new(&["a"], HOUR, TEN, Duration::ZERO);
    f.store.refresh(RefreshCause::Scheduled).await;
    tokio::time::sleep(Duration::from_secs(11)).await;
    assert!(matches!(f.store.lookup("b").await, KeyLookup::UnknownKid));
    assert_eq!(
        f.fetches().len(),
        2,
        "an unknown kid outside the interval fetches"
    );
    f.serve(&jwks(&["a", "b"]));
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(matches!(f.store.lookup("b").await, KeyLookup::UnknownKid));
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(found(&f.store.lookup("b").await));
    assert_eq!(f.fetches().len(), 3);
}

#[tokio::test(start_paused = true)]
async fn keys_past_the_max_age_are_unavailable() {
    let f = Fixture::new(
        &["a"],
        Duration::from_secs(30),
        Duration::ZERO,
        Duration::ZERO,
    );
    f.store.refresh(RefreshCause::Scheduled).await;
    assert!(f.store.usable());
    tokio::time::sleep(Duration::from_secs(31)).await;
    assert!(!f.store.usable());
    assert_eq!(f.store.unusable_reason(), Some("keys stale"));
    assert!(matches!(f.store.lookup_now("a"), KeyLookup::Unavailable));
}

#[derive(Debug, Clone)]
enum Step {
    /// Wait this many milliseconds.
    Wait(u64),
    /// Publish key number n (kids "k1".."k3"; "k0" is there from the start).
    Publish(usize),
    /// A request for key n (0..=3), or for a random kid (a flood).
    Request(usize),
    Random(u32),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0u64..4_000).prop_map(Step::Wait),
        1 => (1usize..4).prop_map(Step::Publish),
        4 => (0usize..4).prop_map(Step::Request),
        2 => any::<u32>().prop_map(Step::Random),
    ]
}

/// What one history did: when each fetch started, when each key was
/// published, and every request for a key (which, when, accepted or not).
type History = (
    Vec<Instant>,
    Vec<Option<Instant>>,
    Vec<(usize, Instant, bool)>,
);

/// One random history on paused time.
fn run_history(steps: &[Step], min_interval: Duration, fetch_time: Duration) -> History {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let f = Fixture::new(&["k0"], HOUR, min_interval, fetch_time);
        f.store.refresh(RefreshCause::Scheduled).await;
        let mut published: Vec<Option<Instant>> = vec![Some(Instant::now()), None, None, None];
        let results = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for step in steps {
            match step {
                Step::Wait(ms) => tokio::time::sleep(Duration::from_millis(*ms)).await,
                Step::Publish(n) => {
                    if published[*n].is_none() {
                        published[*n] = Some(Instant::now());
                        let kids: Vec<String> = (0..4)
                            .filter(|i| published[*i].is_some())
                            .map(|i| format!("k{i}"))
                            .collect();
                        let kids: Vec<&str> = kids.iter().map(String::as_str).collect();
                        f.serve(&jwks(&kids));
                    }
                }
                Step::Request(n) => {
                    let store = Arc::clone(&f.store);
                    let results = Arc::clone(&results);
                    let n = *n;
                    tasks.push(tokio::spawn(async move {
                        let asked = Instant::now();
                        let ok = found(&store.lookup(&format!("k{n}")).await);
                        results.lock().expect("lock").push((n, asked, ok));
                    }));
                }
                Step::Random(kid) => {
                    let store = Arc::clone(&f.store);
                    let kid = *kid;
                    tasks.push(tokio::spawn(async move {
                        store.lookup(&format!("random-{kid}")).await;
                    }));
                }
            }
            tokio::task::yield_now().await;
        }
        for task in tasks {
            task.await.expect("task");
        }
        let results = results.lock().expect("lock").clone();
        (f.fetches(), published, results)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// A key present in the JWKS is accepted no later than one minimum
    /// interval plus one fetch after its first request, and no two fetches
    /// start less than one interval apart, whatever the order of fetches,
    /// publications, requests and random kids.
    #[test]
    fn keys_arrive_within_one_interval_and_floods_fetch_once_per_interval(
        steps in proptest::collection::vec(step(), 1..80),
        interval_secs in 1u64..20,
        fetch_ms in 0u64..2_000,
    ) {
        let interval = Duration::from_secs(interval_secs);
        let fetch_time = Duration::from_millis(fetch_ms);
        let (fetches, published, results) = run_history(&steps, interval, fetch_time);
        for pair in fetches.windows(2) {
            prop_assert!(
                pair[1] - pair[0] >= interval,
                "two fetches {:?} apart with an interval of {:?}", pair[1] - pair[0], interval
            );
        }
        for (n, publish) in published.iter().enumerate() {
            let Some(publish) = publish else { continue };
            let Some(first) = results
                .iter()
                .filter(|(key, asked, _)| *key == n && asked >= publish)
                .map(|(_, asked, _)| *asked)
                .min()
            else {
                continue;
            };
            let bound = first + interval + fetch_time;
            for (key, asked, ok) in &results {
                if *key == n && *asked >= bound {
                    prop_assert!(
                        *ok,
                        "k{} asked {:?} after its first request was refused (bound {:?})",
                        n, *asked - first, interval + fetch_time
                    );
                }
            }
        }
    }
}
