//! A debug-build check of the engine's first invariant: no part's lock is
//! held while another is taken. Each part takes its lock through [`Locked`],
//! which counts the scope locks the thread holds and asserts it held none.
//! In release builds the count and the check compile away.

use std::ops::{Deref, DerefMut};

#[cfg(debug_assertions)]
thread_local! {
    static HELD: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// A part's lock guard, counted while it lives.
pub(crate) struct Locked<G> {
    guard: G,
}

impl<G> Locked<G> {
    /// Wraps a guard just taken; panics (in debug builds) if this thread
    /// already held a scope lock.
    #[track_caller]
    pub(crate) fn new(guard: G) -> Self {
        #[cfg(debug_assertions)]
        HELD.with(|held| {
            debug_assert_eq!(
                held.get(),
                0,
                "a scope's lock was taken while another was held (engine invariant 1)"
            );
            held.set(held.get() + 1);
        });
        Locked { guard }
    }
}

impl<G> Drop for Locked<G> {
    fn drop(&mut self) {
        #[cfg(debug_assertions)]
        HELD.with(|held| held.set(held.get() - 1));
    }
}

impl<G: Deref> Deref for Locked<G> {
    type Target = G::Target;

    fn deref(&self) -> &G::Target {
        &self.guard
    }
}

impl<G: DerefMut> DerefMut for Locked<G> {
    fn deref_mut(&mut self) -> &mut G::Target {
        &mut self.guard
    }
}

#[cfg(all(test, debug_assertions, not(loom)))]
mod tests {
    use std::sync::Mutex;

    use super::Locked;

    #[test]
    fn one_lock_at_a_time_passes() {
        let (a, b) = (Mutex::new(1), Mutex::new(2));
        let first = Locked::new(a.lock().unwrap());
        drop(first);
        let second = Locked::new(b.lock().unwrap());
        assert_eq!(*second, 2);
    }

    #[test]
    #[should_panic(expected = "engine invariant 1")]
    fn a_second_lock_while_one_is_held_is_caught() {
        let (a, b) = (Mutex::new(1), Mutex::new(2));
        let _first = Locked::new(a.lock().unwrap());
        let _second = Locked::new(b.lock().unwrap());
    }
}
