//! The engine behind a cancellation source and its tokens.
//!
//! A [`Node`] is the shared state of one `CancellationSource`: a state byte
//! that observers read without locking, and a registry of *handlers*, the
//! things to do on cancel. One mechanism serves all three kinds of handler:
//!
//! * [`Handler::Child`]: a linked source below this one; cancelling this node
//!   cancels it (this is how `CancellationSource::linked` works);
//! * [`Handler::Callback`]: a callback registered with `on_cancel`;
//! * [`Handler::Waker`]: a task waiting in `cancelled()`.
//!
//! # Invariants
//!
//! 1. `state` changes only while `inner` is locked, and only once: from `0`
//!    to `CANCELLED` (with `INHERITED` when the cause is an ancestor).
//! 2. `inner.origin` is `Some` exactly when `state` has `CANCELLED`; both are
//!    written in the same critical section.
//! 3. Once cancelled, `inner.handlers` is `None` forever: cancellation drains
//!    the registry and nothing is registered afterwards ([`Node::register`]
//!    hands the handler back, and the caller acts on it at once).
//! 4. A registry key belongs to exactly one holder (a source's link, a
//!    `Registration`, a waiting future), the only one that removes it. By
//!    invariant 3 keys are never reused after the drain, so a late removal
//!    cannot hit another holder's entry.
//! 5. A node's lock is never held while user code runs (callbacks, wakers,
//!    and the destructors of either), nor while another lock is taken.
//!
//! # Lock order
//!
//! By invariant 5 at most one node lock is held at a time, so there is no
//! order to respect and no deadlock between nodes.
//!
//! # Cancelling
//!
//! [`cancel`] works in two phases, neither of them recursive:
//!
//! 1. *Flag*: breadth first through the linked descendants, each node is
//!    locked, marked cancelled with the operation's shared [`Origin`], and its
//!    registry drained. No user code runs, so this phase always ends quickly.
//! 2. *Notify*: wakers are woken, then callbacks run; a panicking callback is
//!    caught, and the first panic is resumed once everything has run.
//!
//! A node can be reached by two cancellations at once (a diamond, or two
//! parents cancelled together). The first to lock it flags it; the other
//! skips it, then — after finishing its own flagging, so that two operations
//! never wait on each other — waits until the winner has finished flagging.
//! So when any `cancel` returns, every descendant reports cancelled.

use std::cmp::Reverse;
use std::collections::VecDeque;
use std::panic;
use std::sync::PoisonError;
use std::task::Waker;

use slab::Slab;
use tokio::sync::Notify;

use super::callback::Callback;
use super::deadline::Deadline;
use super::reason::{CancelReason, SharedReason};
use crate::loom::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use crate::loom::sync::{Arc, Mutex, MutexGuard};
use crate::loom::thread;

const CANCELLED: u8 = 1;
const INHERITED: u8 = 2;

/// The shared state of one cancellation source.
pub(crate) struct Node {
    /// `0`, or `CANCELLED` possibly with `INHERITED`. Written under `inner`
    /// with `Release`, read with `Acquire`: whatever the cancelling thread did
    /// before `cancel` happens-before an observer that sees it.
    state: AtomicU8,
    inner: Mutex<Inner>,
    /// The effective deadline (`deadline.rs`).
    deadline: Deadline,
}

struct Inner {
    /// Things to do on cancel; allocated on first use, so a leaf token costs
    /// no registry.
    handlers: Option<Box<Slab<Handler>>>,
    /// The operation that cancelled this node (invariant 2).
    origin: Option<Arc<Origin>>,
}

/// Something to do when a node is cancelled.
pub(crate) enum Handler {
    /// A linked source to cancel in turn.
    Child(Arc<Node>),
    /// A callback registered with `on_cancel`.
    Callback(Arc<Callback>),
    /// A task waiting for cancellation.
    Waker(Waker),
}

/// One cancellation operation: the reason shared by every node it flagged,
/// and how far it has got.
pub(crate) struct Origin {
    reason: SharedReason,
    /// Set once phase 1 (flagging) is over.
    flagged: AtomicBool,
    /// Set once phase 2 (wakers and callbacks) is over.
    notified: AtomicBool,
    notify: Notify,
}

impl Origin {
    fn new(reason: SharedReason) -> Self {
        Origin {
            reason,
            flagged: AtomicBool::new(false),
            notified: AtomicBool::new(false),
            notify: Notify::new(),
        }
    }

    /// The reason as a node sees it: wrapped once if it came from an ancestor.
    fn reason_for(&self, inherited: bool) -> CancelReason {
        if inherited && !self.reason.is_inherited() {
            CancelReason::Ancestor(SharedReason::clone(&self.reason))
        } else {
            CancelReason::clone(&self.reason)
        }
    }

    /// The original reason, shared (used when a new link inherits it).
    pub(crate) fn root_reason(&self) -> SharedReason {
        SharedReason::clone(&self.reason)
    }

    /// Whether every waker and callback of the operation has run.
    pub(crate) fn is_notified(&self) -> bool {
        self.notified.load(Ordering::Acquire)
    }

    /// Resolves once every waker and callback of the operation has run.
    pub(crate) async fn wait_notified(&self) {
        let notified = self.notify.notified();
        tokio::pin!(notified);
        // Enabled before the flag is read: `notify_waiters` after the flag is
        // set cannot be missed.
        notified.as_mut().enable();
        if self.is_notified() {
            return;
        }
        notified.await;
    }
}

impl Node {
    pub(crate) fn new() -> Arc<Node> {
        Arc::new(Node {
            state: AtomicU8::new(0),
            inner: Mutex::new(Inner {
                handlers: None,
                origin: None,
            }),
            deadline: Deadline::default(),
        })
    }

    pub(crate) fn deadline(&self) -> &Deadline {
        &self.deadline
    }

    /// The linked sources below this node (to tighten their deadlines).
    pub(crate) fn children(&self) -> Vec<Arc<Node>> {
        let inner = self.lock();
        let Some(handlers) = &inner.handlers else {
            return Vec::new();
        };
        handlers
            .iter()
            .filter_map(|(_, handler)| match handler {
                Handler::Child(child) => Some(Arc::clone(child)),
                _ => None,
            })
            .collect()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // No code that can panic runs under the lock (invariant 5), so a
        // poisoned lock still guards consistent data.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// One atomic load.
    #[inline]
    pub(crate) fn is_cancelled(&self) -> bool {
        self.state.load(Ordering::Acquire) & CANCELLED != 0
    }

    /// Adds `handler` and returns its key, or hands it back if the node is
    /// already cancelled (invariant 3).
    pub(crate) fn register(&self, handler: Handler) -> Result<usize, Handler> {
        let mut inner = self.lock();
        if inner.origin.is_some() {
            return Err(handler);
        }
        // Most nodes only ever hold one handler (a waiting task, a callback,
        // one child): start with room for one rather than slab's default.
        let handlers = inner
            .handlers
            .get_or_insert_with(|| Box::new(Slab::with_capacity(1)));
        Ok(handlers.insert(handler))
    }

    /// Removes the handler under `key`; `None` if cancellation drained it
    /// first. The caller drops what it gets back, after the lock is released.
    pub(crate) fn deregister(&self, key: usize) -> Option<Handler> {
        self.lock().handlers.as_mut()?.try_remove(key)
    }

    /// Stores `waker` under `key` unless it would wake the same task.
    /// Returns `false` if the node was cancelled (the registry drained).
    pub(crate) fn update_waker(&self, key: usize, waker: &Waker) -> bool {
        let replaced = {
            let mut inner = self.lock();
            match inner.handlers.as_mut().and_then(|h| h.get_mut(key)) {
                Some(Handler::Waker(current)) if current.will_wake(waker) => None,
                Some(Handler::Waker(current)) => Some(std::mem::replace(current, waker.clone())),
                Some(_) => unreachable!("key of a waiting future holds another handler"),
                None => return false,
            }
        };
        drop(replaced);
        true
    }

    /// The reason this node was cancelled, if it was.
    pub(crate) fn reason(&self) -> Option<CancelReason> {
        if !self.is_cancelled() {
            return None;
        }
        let origin = self.origin()?;
        let inherited = self.state.load(Ordering::Acquire) & INHERITED != 0;
        Some(origin.reason_for(inherited))
    }

    /// The operation that cancelled this node, if it was.
    pub(crate) fn origin(&self) -> Option<Arc<Origin>> {
        self.lock().origin.clone()
    }
}

/// Cancels `root` and everything linked below it, with `reason` (seen as an
/// ancestor's reason by `root` too when `root_inherited`).
///
/// Returns `true` if this call cancelled `root`, `false` if it already was.
/// Resumes the first panic of a callback after every callback has run.
pub(crate) fn cancel(root: &Arc<Node>, reason: SharedReason, root_inherited: bool) -> bool {
    if root.is_cancelled() {
        return false;
    }
    let origin = Arc::new(Origin::new(reason));
    let mut run = Notifications::default();
    let cancelled_root = run.flag_tree(root, &origin, root_inherited);
    origin.flagged.store(true, Ordering::Release);
    run.wait_for_other_flagging();
    run.notify(&origin);
    cancelled_root
}

/// What phase 1 collected for phase 2.
#[derive(Default)]
struct Notifications {
    wakers: Vec<Waker>,
    /// In order: nodes breadth first, each node's callbacks last-registered
    /// first. The flag says whether the callback's node inherited the reason.
    callbacks: Vec<(Arc<Callback>, bool)>,
    /// Operations that flagged nodes of this tree first and may still be
    /// flagging below them.
    others: Vec<Arc<Origin>>,
}

impl Notifications {
    /// Phase 1. Returns whether `root` was flagged by this call.
    fn flag_tree(&mut self, root: &Arc<Node>, origin: &Arc<Origin>, root_inherited: bool) -> bool {
        let mut queue = VecDeque::from([(Arc::clone(root), root_inherited)]);
        let mut flagged_root = None;
        while let Some((node, inherited)) = queue.pop_front() {
            let drained = {
                let mut inner = node.lock();
                match &inner.origin {
                    Some(other) => {
                        if !Arc::ptr_eq(other, origin) && !other.flagged.load(Ordering::Acquire) {
                            self.others.push(Arc::clone(other));
                        }
                        None
                    }
                    None => {
                        inner.origin = Some(Arc::clone(origin));
                        let state = if inherited {
                            CANCELLED | INHERITED
                        } else {
                            CANCELLED
                        };
                        node.state.store(state, Ordering::Release);
                        Some(inner.handlers.take())
                    }
                }
            };
            flagged_root.get_or_insert(drained.is_some());
            let Some(Some(mut handlers)) = drained else {
                continue;
            };
            let first_callback = self.callbacks.len();
            for handler in handlers.drain() {
                match handler {
                    Handler::Child(child) => queue.push_back((child, true)),
                    Handler::Callback(callback) => self.callbacks.push((callback, inherited)),
                    Handler::Waker(waker) => self.wakers.push(waker),
                }
            }
            self.callbacks[first_callback..].sort_unstable_by_key(|(cb, _)| Reverse(cb.seq()));
        }
        flagged_root.unwrap_or(false)
    }

    /// Waits until every operation met in phase 1 has finished its own
    /// phase 1. That phase runs no user code, so this wait is short.
    fn wait_for_other_flagging(&mut self) {
        for other in self.others.drain(..) {
            while !other.flagged.load(Ordering::Acquire) {
                thread::yield_now();
            }
        }
    }

    /// Phase 2.
    fn notify(self, origin: &Origin) {
        for waker in self.wakers {
            waker.wake();
        }
        let mut first_panic = None;
        if !self.callbacks.is_empty() {
            let own = origin.reason_for(false);
            let inherited = origin.reason_for(true);
            for (callback, is_inherited) in self.callbacks {
                let reason = if is_inherited { &inherited } else { &own };
                if let Err(payload) = callback.run(reason) {
                    first_panic.get_or_insert(payload);
                }
            }
        }
        origin.notified.store(true, Ordering::Release);
        origin.notify.notify_waiters();
        if let Some(payload) = first_panic {
            panic::resume_unwind(payload);
        }
    }
}
