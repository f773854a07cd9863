//! The guard returned by `on_cancel`.

use std::fmt;

use super::callback::Callback;
use super::node::Node;
use crate::loom::sync::Arc;

/// Keeps a callback registered with
/// [`CancellationToken::on_cancel`](crate::CancellationToken::on_cancel);
/// dropping it unregisters the callback.
///
/// * Dropped before cancellation: the callback never runs. The same holds
///   if it is dropped while a cancellation is under way but has not reached
///   this callback yet (tasks waiting on the token are woken before the
///   callbacks run, so a task may drop its registration in that window):
///   exactly one of "it runs" and "it is unregistered" happens. Keep the
///   registration in something that outlives the task if the callback must
///   run whenever the token fires.
/// * Dropped while the callback runs on another thread: `drop` waits until
///   the callback has returned, so whatever the callback touches may be freed
///   right after. Keep
///   callbacks short: a thread dropping the guard spins until they return.
/// * Dropped from inside its own callback (or from anything that callback
///   calls on the same thread): returns at once, no deadlock.
///
/// [`unregister`](Registration::unregister) is the non-waiting form.
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::sync::Arc;
/// use taskscope::CancellationSource;
///
/// let source = CancellationSource::new();
/// let ran = Arc::new(AtomicBool::new(false));
/// let registration = source.token().on_cancel({
///     let ran = ran.clone();
///     move |_reason| ran.store(true, Ordering::SeqCst)
/// });
/// drop(registration); // unregistered: the callback will never run
/// source.cancel();
/// assert!(!ran.load(Ordering::SeqCst));
/// ```
#[must_use = "dropping a Registration unregisters its callback at once"]
pub struct Registration {
    state: State,
}

enum State {
    /// Registered with a live token.
    Armed {
        node: Arc<Node>,
        key: usize,
        callback: Arc<Callback>,
    },
    /// The token can never be cancelled; the callback was dropped unrun.
    Never,
    /// The token was already cancelled; the callback ran inline.
    Ran,
    /// Unregistered through [`Registration::unregister`].
    Unregistered,
}

impl Registration {
    pub(crate) fn armed(node: Arc<Node>, key: usize, callback: Arc<Callback>) -> Self {
        Registration {
            state: State::Armed {
                node,
                key,
                callback,
            },
        }
    }

    pub(crate) fn never() -> Self {
        Registration {
            state: State::Never,
        }
    }

    pub(crate) fn ran() -> Self {
        Registration { state: State::Ran }
    }

    /// Unregisters without waiting. Returns `true` if
    /// the callback had not started and now never will; `false` if it has
    /// already run or is running now (perhaps on another thread, still).
    ///
    /// ```
    /// use taskscope::CancellationSource;
    ///
    /// let source = CancellationSource::new();
    /// let registration = source.token().on_cancel(|_| println!("cancelled"));
    /// assert!(registration.unregister());
    ///
    /// source.cancel();
    /// let late = source.token().on_cancel(|_| println!("runs inline"));
    /// assert!(!late.unregister());
    /// ```
    pub fn unregister(mut self) -> bool {
        match std::mem::replace(&mut self.state, State::Unregistered) {
            State::Armed {
                node,
                key,
                callback,
            } => disarm(&node, key, &callback),
            State::Never => true,
            State::Ran | State::Unregistered => false,
        }
    }
}

/// Takes the callback out of the node's registry, or beats a cancellation
/// that drained it to running it. Returns whether the callback will never run.
fn disarm(node: &Node, key: usize, callback: &Callback) -> bool {
    match node.deregister(key) {
        // Still registered: cancellation never saw it.
        Some(handler) => {
            drop(handler);
            callback.disarm()
        }
        // Drained by a cancellation: race it to the callback's state.
        None => callback.disarm(),
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let State::Armed {
            node,
            key,
            callback,
        } = &self.state
        {
            if !disarm(node, *key, callback) {
                callback.wait_until_done();
            }
        }
    }
}

impl fmt::Debug for Registration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Armed { .. } => "armed",
            State::Never => "never (token cannot be cancelled)",
            State::Ran => "ran inline",
            State::Unregistered => "unregistered",
        };
        f.debug_struct("Registration")
            .field("state", &state)
            .finish()
    }
}
