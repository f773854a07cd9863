//! What both benches share: a heap counter switched on only while a
//! memory figure is measured, and reading criterion's medians back for the
//! summary table each bench prints at the end. Each bench uses part of it.
#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};

/// Forwards to `System`, counting live bytes while [`COUNTING`] is on.
pub struct Counting;

/// Whether allocations are being counted.
pub static COUNTING: AtomicBool = AtomicBool::new(false);
/// Bytes allocated and not yet freed while counting.
pub static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call forwards to `System` with the caller's arguments; the
// counter is bookkeeping only.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if COUNTING.load(Ordering::Relaxed) {
            LIVE_BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        }
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Criterion's median estimate (ns) for one benchmark of this run, read
/// from `target/criterion/<group>/<id>/new/estimates.json`.
pub fn median_ns(group: &str, id: &str) -> Option<f64> {
    let exe = std::env::current_exe().ok()?;
    let target = exe.parent()?.parent()?.parent()?; // target/release/deps/<bench>
    let path = target
        .join("criterion")
        .join(group)
        .join(id)
        .join("new/estimates.json");
    let json = std::fs::read_to_string(path).ok()?;
    let median = &json[json.find("\"median\"")?..];
    let estimate = &median[median.find("\"point_estimate\":")? + 17..];
    let end = estimate.find([',', '}'])?;
    estimate[..end].trim().parse().ok()
}

/// Whether criterion was asked only to list or smoke-test the benches.
pub fn listing_only() -> bool {
    std::env::args().any(|a| a == "--list" || a == "--test")
}

/// A tracing subscriber that enables everything and records nothing.
pub struct Enabled;

impl tracing::Subscriber for Enabled {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, _: &tracing::Event<'_>) {}
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// The runtime the batch benches run on: 2 workers, as the machine's cores.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}
