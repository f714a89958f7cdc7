//! Memory that a structure holds and must give back.

use crate::wait::eventually;

const MIB: usize = 1024 * 1024;

/// Asserts that what `fill` makes a process hold is given back after
/// `release` starts, while the process goes on working.
///
/// - `live_bytes`: the bytes the process holds (an allocator's statistics;
///   the calling test binary owns the global allocator).
/// - `fill`: called once; must make the process hold at least 8 MiB more.
/// - `release`: called once, then the process must come back within 2 MiB
///   of where it was before `fill`.
/// - `keep_working`: called between checks, for a structure that frees its
///   memory only as later work moves it on (epoch-based reclamation).
///
/// # Panics
/// With both figures, when `fill` held too little, or when the memory is
/// not back within [`crate::wait::EVENTUALLY`].
pub async fn assert_given_back(
    live_bytes: impl Fn() -> usize,
    fill: impl FnOnce(),
    release: impl FnOnce(),
    keep_working: impl Fn(),
) {
    let before = live_bytes();
    fill();
    let held = live_bytes();
    assert!(
        held > before + 8 * MIB,
        "fill made the process hold too little to tell: {} MiB before, {} MiB after",
        before / MIB,
        held / MIB
    );
    release();
    eventually("the memory is given back", async || {
        keep_working();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        live_bytes() < before + 2 * MIB
    })
    .await;
}

/// Bytes allocated and not yet freed, by every thread, as jemalloc counts
/// them. The calling test binary has jemalloc as its global allocator
/// (`tikv_jemallocator::Jemalloc`); otherwise this is about 0.
///
/// # Panics
/// When jemalloc's statistics cannot be read.
#[cfg(feature = "jemalloc")]
pub fn jemalloc_live_bytes() -> usize {
    tikv_jemalloc_ctl::epoch::advance().expect("jemalloc epoch");
    tikv_jemalloc_ctl::stats::allocated::read().expect("jemalloc stats")
}

/// Asserts that the samples of a Prometheus histogram are given back once
/// `start_upkeep` has run, without a scrape, and that none was lost: a
/// scrape (`render`) then counts every one under `{name}_count`.
///
/// `record` records one sample (seconds) into the histogram `name`; the
/// test records 2,000,000 (15 MiB held until upkeep). Memory is counted by
/// [`jemalloc_live_bytes`], so the calling test binary has jemalloc as its
/// global allocator and no other test in it.
///
/// # Panics
/// As [`assert_given_back`], or when the scrape counts too few samples.
#[cfg(feature = "jemalloc")]
pub async fn assert_histogram_given_back(
    name: &str,
    record: impl Fn(f64),
    start_upkeep: impl FnOnce(),
    render: impl Fn() -> String,
) {
    const SAMPLES: usize = 2_000_000;
    // The histogram and the recorder's own tables exist before counting.
    record(0.001);
    render();
    assert_given_back(
        jemalloc_live_bytes,
        || (0..SAMPLES).for_each(|i| record((i % 1000) as f64 / 1e6)),
        start_upkeep,
        // The exporter frees drained blocks as recording moves the epoch
        // on, as every request does.
        || (0..1_000).for_each(|_| record(0.001)),
    )
    .await;
    let scrape = render();
    let count: usize = scrape
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{name}_count ")))
        .unwrap_or_else(|| panic!("no {name}_count in the scrape"))
        .trim()
        .parse()
        .expect("a count");
    assert!(count > SAMPLES, "{count} samples counted, not {SAMPLES}");
}
