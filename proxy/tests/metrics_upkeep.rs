//! The metrics recorder gives back the memory of histogram samples without
//! a scrape: the exporter keeps every sample until upkeep folds it into
//! the buckets, so a proxy nobody scraped grew with every request.
//!
//! A test binary of its own: it counts every byte the process holds, so no
//! other test's allocations are counted.

use std::time::Duration;

use metrics::{Key, Metadata, Recorder};
use retainwise_proxy::metrics::{REQUEST_DURATION, builder, spawn_upkeep};
use retainwise_testkit::memory::assert_histogram_given_back;

/// The proxy's allocator, whose statistics count what the process holds.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

static METADATA: Metadata<'static> = Metadata::new(module_path!(), metrics::Level::INFO, None);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn histogram_samples_are_freed_without_a_scrape() {
    let recorder = builder().expect("buckets").build_recorder();
    let handle = recorder.handle();
    let histogram =
        recorder.register_histogram(&Key::from_static_name(REQUEST_DURATION), &METADATA);
    assert_histogram_given_back(
        REQUEST_DURATION,
        |seconds| histogram.record(seconds),
        || drop(spawn_upkeep(handle.clone(), Duration::from_millis(100))),
        || handle.render(),
    )
    .await;
}
