//! The ambient current scope: set around every poll of a scope body and of
//! every task, so that [`token()`] and nested scopes find their enclosing
//! scope without a parameter.
//!
//! # Invariants
//!
//! 1. The ambient value lives in the future it belongs to (a scope's driver
//!    or a task) and is *moved* into a thread-local for the duration of a
//!    poll or a drop, then moved back: no reference count is touched per
//!    poll, and a task's ambient costs it no allocation.
//! 2. Entering is nested and restored on every exit, panics included: after
//!    a poll the thread-local holds what it held before.

use std::cell::{Cell, OnceCell};
use std::sync::Arc;

use crate::cancel::CancellationToken;
use crate::scope::engine::Engine;

/// The `task` of a scope's body.
const BODY: u64 = u64::MAX;

/// Where the current code runs: a scope's body or one of its tasks.
pub(crate) struct Ambient {
    pub(crate) engine: Arc<Engine>,
    /// The task's id, or [`BODY`] (one word, not an `Option`'s two).
    task: u64,
    /// A task's own token, fetched from the registry on first use.
    own: OnceCell<CancellationToken>,
}

impl Ambient {
    pub(crate) fn body(engine: Arc<Engine>) -> Self {
        Ambient {
            engine,
            task: BODY,
            own: OnceCell::new(),
        }
    }

    pub(crate) fn task(engine: Arc<Engine>, id: u64) -> Self {
        debug_assert_ne!(id, BODY);
        Ambient {
            engine,
            task: id,
            own: OnceCell::new(),
        }
    }

    /// The task's id, `None` in a scope's body.
    pub(crate) fn task_id(&self) -> Option<u64> {
        (self.task != BODY).then_some(self.task)
    }

    /// The current code's token: the scope's in its body, the task's own
    /// (a child of the scope's) in a task.
    pub(crate) fn token(&self) -> CancellationToken {
        self.token_ref().clone()
    }

    /// [`token`](Ambient::token), lent.
    pub(crate) fn token_ref(&self) -> &CancellationToken {
        match self.task_id() {
            None => self.engine.cancel.token_ref(),
            Some(id) => self.own.get_or_init(|| {
                self.engine
                    .registry
                    .own_token(id, self.engine.cancel.token_ref())
            }),
        }
    }

    /// Whether the current code's token is cancelled.
    pub(crate) fn is_cancelled(&self) -> bool {
        match (self.task_id(), self.own.get()) {
            (None, _) => self.engine.cancel.is_cancelled(),
            (Some(_), Some(own)) => own.is_cancelled(),
            (Some(id), None) => self.engine.registry.is_cancelled(id, &self.engine.token()),
        }
    }
}

thread_local! {
    static CURRENT: Cell<Option<Ambient>> = const { Cell::new(None) };
}

/// Runs `f` with `slot`'s ambient value current (invariants 1 and 2).
///
/// The value and the one it replaces trade places: while `f` runs, `slot`
/// holds the previous value, so entering costs the caller's frame one
/// pointer however deeply scopes nest.
#[inline(always)]
pub(crate) fn enter<R>(slot: &mut Option<Ambient>, f: impl FnOnce() -> R) -> R {
    struct Leave<'a>(&'a mut Option<Ambient>);
    impl Drop for Leave<'_> {
        fn drop(&mut self) {
            swap(self.0);
        }
    }
    swap(slot);
    let _leave = Leave(slot);
    f()
}

/// Swaps `slot` with the thread's current ambient value. During thread
/// teardown, when the thread-local is gone, nothing is swapped.
#[inline(never)]
fn swap(slot: &mut Option<Ambient>) {
    let _ = CURRENT.try_with(|current| current.swap(Cell::from_mut(slot)));
}

/// Calls `f` with the current ambient value, if any. The value is lent out
/// of the thread-local for the call and put back after it, panics
/// included; `f` must not look for the ambient value itself.
pub(crate) fn with<R>(f: impl FnOnce(Option<&Ambient>) -> R) -> R {
    let mut lent = None;
    swap(&mut lent);
    struct PutBack<'a>(&'a mut Option<Ambient>);
    impl Drop for PutBack<'_> {
        fn drop(&mut self) {
            swap(self.0);
        }
    }
    let lent = PutBack(&mut lent);
    f(lent.0.as_ref())
}

/// The cancellation token of the current scope body or task, or
/// [`CancellationToken::none()`] outside any scope.
///
/// Inside a task it is the task's own token (a child of its scope's token,
/// so it fires when the scope is cancelled *or* when the task alone is
/// cancelled through [`TaskHandle::cancel`](crate::TaskHandle::cancel)).
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// assert!(!taskscope::token().can_be_cancelled()); // outside any scope
///
/// taskscope::scope(async |s| {
///     assert_eq!(taskscope::token(), s.token());
///     s.spawn(async {
///         let token = taskscope::token(); // no parameter needed
///         token.cancelled().await;
///         Ok::<_, taskscope::Cancelled>(())
///     });
///     s.cancel();
///     Ok::<_, taskscope::Cancelled>(())
/// })
/// .await
/// .unwrap();
/// # }
/// ```
pub fn token() -> CancellationToken {
    with(|ambient| ambient.map(Ambient::token).unwrap_or_default())
}
