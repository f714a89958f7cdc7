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
