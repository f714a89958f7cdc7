//! The metrics recorder gives back the memory of histogram samples without
//! a scrape: the exporter keeps every sample until upkeep folds it into
//! the buckets, so an app nobody scraped grew with every request.
//!
//! A test binary of its own: it counts every byte the process holds, so no
//! other test's allocations are counted.

use std::time::Duration;

use metrics::{Key, Metadata, Recorder};
use retainwise_app::metrics::{builder, spawn_upkeep};
use retainwise_testkit::memory::assert_given_back;

/// jemalloc, whose statistics count what the process holds.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Bytes allocated and not yet freed, by every thread.
fn live_bytes() -> usize {
    tikv_jemalloc_ctl::epoch::advance().expect("jemalloc epoch");
    tikv_jemalloc_ctl::stats::allocated::read().expect("jemalloc stats")
}

/// 2,000,000 samples of 8 bytes: 15 MiB held until upkeep.
const SAMPLES: usize = 2_000_000;

/// The app's request latency histogram.
const REQUEST_DURATION: &str = "retainwise_app_http_request_duration_seconds";

static METADATA: Metadata<'static> = Metadata::new(module_path!(), metrics::Level::INFO, None);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn histogram_samples_are_freed_without_a_scrape() {
    let recorder = builder().build_recorder();
    let handle = recorder.handle();
    let histogram =
        recorder.register_histogram(&Key::from_static_name(REQUEST_DURATION), &METADATA);
    histogram.record(0.001);
    handle.run_upkeep();

    assert_given_back(
        live_bytes,
        || (0..SAMPLES).for_each(|i| histogram.record((i % 1000) as f64 / 1e6)),
        || drop(spawn_upkeep(handle.clone(), Duration::from_millis(100))),
        // Freed blocks are reclaimed as recording moves the epoch on; every
        // request records its latency.
        || (0..1_000).for_each(|_| histogram.record(0.001)),
    )
    .await;

    // Folded, not dropped: every sample is counted in the scrape.
    let scrape = handle.render();
    let count: usize = scrape
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{REQUEST_DURATION}_count ")))
        .expect("the histogram's count")
        .trim()
        .parse()
        .expect("a count");
    assert!(count > SAMPLES, "{count} samples counted");
}
