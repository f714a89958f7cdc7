//! Waiting for a condition instead of sleeping.
//!
//! Every wait in the suites goes through [`wait_for`]: it polls until the
//! condition holds and fails the test only when it never does within the
//! limit. The limit is a bound on a hung test, not an assertion about
//! speed, so the constants below are generous.

use std::time::{Duration, Instant};

/// The default limit: a server on loopback answering, a log line
/// appearing, a job finishing.
pub const EVENTUALLY: Duration = Duration::from_secs(30);

/// For waits that include starting processes, a build, or a chain of
/// services (a stack coming up, a prediction completing end to end).
pub const SLOW: Duration = Duration::from_secs(60);

/// How often a condition is checked.
const POLL: Duration = Duration::from_millis(50);

/// Polls `check` until it returns `Ok`, returning the value. After `limit`
/// the test fails with `what` and the last `Err` (what was seen instead).
pub async fn wait_for<T>(
    limit: Duration,
    what: &str,
    mut check: impl AsyncFnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        match check().await {
            Ok(value) => return value,
            Err(last) if Instant::now() >= deadline => {
                let seen = if last.is_empty() {
                    String::new()
                } else {
                    format!("; last seen: {last}")
                };
                panic!("timed out after {limit:?} waiting until {what}{seen}");
            }
            Err(_) => tokio::time::sleep(POLL).await,
        }
    }
}

/// Polls `check` until it returns true; fails the test with `what` after
/// `limit`.
pub async fn eventually_within(limit: Duration, what: &str, mut check: impl AsyncFnMut() -> bool) {
    wait_for(limit, what, async || {
        if check().await {
            Ok(())
        } else {
            Err(String::new())
        }
    })
    .await
}

/// [`eventually_within`] with the default limit, [`EVENTUALLY`].
pub async fn eventually(what: &str, check: impl AsyncFnMut() -> bool) {
    eventually_within(EVENTUALLY, what, check).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waits_until_the_condition_holds_and_returns_its_value() {
        let mut calls = 0;
        let value = wait_for(EVENTUALLY, "the third call", async || {
            calls += 1;
            if calls == 3 {
                Ok(calls * 10)
            } else {
                Err(format!("call {calls}"))
            }
        })
        .await;
        assert_eq!(value, 30);
        assert_eq!(calls, 3);
    }

    #[tokio::test]
    #[should_panic(expected = "waiting until never; last seen: still false")]
    async fn fails_with_what_it_waited_for_and_what_it_saw() {
        wait_for(Duration::ZERO, "never", async || -> Result<(), String> {
            Err("still false".into())
        })
        .await
    }

    #[tokio::test]
    #[should_panic(expected = "waiting until the flag is set")]
    async fn eventually_fails_when_the_condition_never_holds() {
        eventually_within(Duration::ZERO, "the flag is set", async || false).await
    }

    #[tokio::test]
    async fn eventually_returns_once_the_condition_holds() {
        let mut calls = 0;
        eventually("the second call", async || {
            calls += 1;
            calls == 2
        })
        .await;
        assert_eq!(calls, 2);
    }
}
