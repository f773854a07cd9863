//! Depth is free: a scope's body is polled and dropped *inside* the scope's
//! own poll and drop, so nesting scopes nests stack frames, one set per
//! level (a few hundred bytes in a release build, several kilobytes in a
//! debug one). Those two places check how much stack is left and, when it
//! runs low, go on on a fresh segment (`stacker`, as rustc does for its own
//! deep recursion). A 2 MiB thread then runs, cancels and drops any depth;
//! shallow nesting pays one comparison of the stack pointer.

/// Below this much stack left, the next level starts a new segment: room
/// for one level of the deepest debug-build frames, and the user code
/// between two levels.
const RED_ZONE: usize = 128 * 1024;

/// The size of each new segment.
const SEGMENT: usize = 2 * 1024 * 1024;

/// Runs `f` with at least [`RED_ZONE`] bytes of stack.
#[inline(always)]
pub(crate) fn with_room<R>(f: impl FnOnce() -> R) -> R {
    match stacker::remaining_stack() {
        Some(left) if left < RED_ZONE => on_new_segment(f),
        _ => f(),
    }
}

#[cold]
#[inline(never)]
fn on_new_segment<R>(f: impl FnOnce() -> R) -> R {
    stacker::grow(SEGMENT, f)
}
