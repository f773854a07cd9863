//! The untyped engine of one scope: its parts, composed.
//!
//! An `Engine` knows nothing of the scope's error type (errors reach its
//! ledger erased), so it can be stored, passed and walked without a
//! type-erasure trait. Each part owns one job and its own lock, and none
//! knows the others:
//!
//! | part | job | lock |
//! |---|---|---|
//! | `settings` | name, policy, grace, warning delay, limit | none (fixed) |
//! | `cancel` ([`CancelState`]) | the source, when and why it fired | the token's node |
//! | `join` ([`JoinCounter`]) | the units still running, the waiter | waker slot |
//! | `ledger` ([`Ledger`]) | failures and panics, in order | its entries |
//! | `registry` ([`Registry`]) | tasks (with own tokens), child scopes | its map |
//!
//! # Invariants
//!
//! 1. No part's lock is held while another is taken, nor while user code or
//!    a cancellation runs: there is no lock order to keep.
//! 2. `parent` is the scope that joins this one (one unit of its counter
//!    until this one's count reaches zero); it is kept alive by its
//!    children. Dropping a chain of engines is a loop, not recursion.
//! 3. The engine records a failure in the ledger *before* it cancels for
//!    it, so a panic during the cancellation cannot lose it.
//! 4. A scope is listed in the tree (its parent's registry, or the roots)
//!    from the first time it waits until it is dropped, and its ancestors
//!    are listed before it returns from that wait. A scope that never waits
//!    (its body and tasks done in one poll) is never listed: nobody could
//!    have seen it, and opening it takes no lock of its parent.

pub(crate) mod cancel_state;
pub(crate) mod cleanups;
pub(crate) mod join;
pub(crate) mod ledger;
pub(crate) mod locals;
pub(crate) mod one_lock;
pub(crate) mod registry;
pub(crate) mod settings;
pub(crate) mod watchdog;

use std::any::TypeId;
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::Duration;

use slab::Slab;
use tokio::sync::Semaphore;

use crate::cancel::{CancelReason, CancellationSource, CancellationToken};
use cancel_state::CancelState;
use join::{release_chain, JoinCounter};
use ledger::{Kind, Ledger, PanicPayload, Payload};
use registry::Registry;
use settings::{Policy, Settings, TaskName};

/// Scope ids, for spans: handed to each thread in blocks, so that opening
/// a scope touches no shared counter.
static NEXT_ID_BLOCK: AtomicU64 = AtomicU64::new(1);
const ID_BLOCK: u64 = 1024;

thread_local! {
    /// The next id this thread hands out, and the end of its block.
    static IDS: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

fn next_scope_id() -> u64 {
    IDS.with(|ids| {
        let (mut next, mut end) = ids.get();
        if next == end {
            next = NEXT_ID_BLOCK.fetch_add(ID_BLOCK, Ordering::Relaxed);
            end = next + ID_BLOCK;
        }
        ids.set((next + 1, end));
        next
    })
}

/// Scopes opened outside any scope; each removes itself when dropped.
static ROOTS: Mutex<Slab<Weak<Engine>>> = Mutex::new(Slab::new());

/// The error type a scope's failures have, for handles that spawn into
/// it. Kept as a function pointer: one word in every scope.
#[derive(Clone, Copy)]
pub(crate) struct ErrorType(fn() -> (TypeId, &'static str));

impl ErrorType {
    pub(crate) fn of<E: 'static>() -> Self {
        ErrorType(|| (TypeId::of::<E>(), std::any::type_name::<E>()))
    }

    pub(crate) fn is<F: 'static>(self) -> bool {
        (self.0)().0 == TypeId::of::<F>()
    }

    pub(crate) fn name(self) -> &'static str {
        (self.0)().1
    }
}

/// The span of a scope without a subscriber that wants it.
static NO_SPAN: tracing::Span = tracing::Span::none();

pub(crate) struct Engine {
    pub(crate) settings: Settings,
    pub(crate) cancel: CancelState,
    pub(crate) join: JoinCounter,
    pub(crate) ledger: Ledger,
    pub(crate) registry: Registry<Engine>,
    /// The scope that joins this one (invariant 2).
    parent: Option<Arc<Engine>>,
    limit: Option<Arc<Semaphore>>,
    next_task: AtomicU64,
    pub(crate) error_type: ErrorType,
    pub(crate) id: u64,
    /// The scope's `tracing` span, only when a subscriber wants it (a
    /// disabled span still takes five words).
    span: Option<Box<tracing::Span>>,
    /// Where the scope is listed (in its parent's registry, or among the
    /// roots) and since when, once it has first waited (invariant 4).
    listed: OnceLock<(usize, tokio::time::Instant)>,
    /// Set once the grace period ran out and tasks were aborted.
    aborting: AtomicBool,
    /// Whether cleanup steps were registered, and whether the driver is
    /// gone (invariant 2 of `cleanups`).
    pub(crate) gate: cleanups::Gate,
}

impl Engine {
    /// Opens a scope joined by `parent` (which must have admitted it: one
    /// unit of its counter is this scope's) and registers it in the tree.
    #[inline(never)]
    pub(crate) fn open(
        settings: Settings,
        limit: Option<usize>,
        source: CancellationSource,
        parent: Option<Arc<Engine>>,
        error_type: ErrorType,
    ) -> Arc<Engine> {
        let id = next_scope_id();
        let span = tracing::debug_span!(
            "scope",
            name = %settings.name,
            location = %settings.name.location(),
            id,
            parent = parent.as_ref().map(|p| p.id),
        );
        let limit = limit.map(|n| Arc::new(Semaphore::new(n)));
        Arc::new(Engine {
            listed: OnceLock::new(),
            settings,
            cancel: CancelState::new(source),
            join: JoinCounter::new(),
            ledger: Ledger::default(),
            registry: Registry::default(),
            parent,
            limit,
            next_task: AtomicU64::new(0),
            error_type,
            id,
            span: (!span.is_disabled()).then(|| Box::new(span)),
            aborting: AtomicBool::new(false),
            gate: cleanups::Gate::default(),
        })
    }

    /// The shutdown grace of the nearest scope, from this one up, that set
    /// one.
    pub(crate) fn shutdown_grace(&self) -> Option<Duration> {
        self.locals().and_then(|carried| carried.shutdown_grace())
    }

    /// Whether a report about this scope also goes to stderr: a scope here
    /// or above asked for it, and no `tracing` subscriber is installed.
    pub(crate) fn reports_to_stderr(&self) -> bool {
        !tracing::dispatcher::has_been_set()
            && self
                .locals()
                .is_some_and(|carried| carried.stderr_reports())
    }

    pub(crate) fn token(&self) -> CancellationToken {
        self.cancel.token()
    }

    /// The scope-local values this scope sees.
    pub(crate) fn locals(&self) -> Option<&Arc<locals::Locals>> {
        self.settings.locals.as_ref()
    }

    /// Lists the scope in the tree (and its ancestors, if they are not yet)
    /// the first time it waits: a scope that never waited had nothing to
    /// show, and opening it costs no lock of its parent (invariant 4).
    pub(crate) fn list(self: &Arc<Self>) {
        let mut engine = self;
        loop {
            if engine.listed.get().is_some() {
                return;
            }
            let weak = Arc::downgrade(engine);
            let key = match &engine.parent {
                Some(parent) => parent.registry.add_child(weak),
                None => list_root(weak),
            };
            if engine
                .listed
                .set((key, tokio::time::Instant::now()))
                .is_err()
            {
                // Listed meanwhile by another thread (a scope nested in this
                // one listing its ancestors while this one lists itself): undo ours.
                unlist(engine.parent.as_deref(), key);
            }
            match &engine.parent {
                Some(parent) => engine = parent,
                None => return,
            }
        }
    }

    /// Since when the scope has been listed in the tree (it first waited).
    pub(crate) fn listed_since(&self) -> Option<tokio::time::Instant> {
        self.listed.get().map(|(_, since)| *since)
    }

    /// The scope's `tracing` span (disabled without a subscriber).
    pub(crate) fn span(&self) -> &tracing::Span {
        self.span.as_deref().unwrap_or(&NO_SPAN)
    }

    /// The scope that joins this one, if any.
    pub(crate) fn parent(&self) -> Option<&Arc<Engine>> {
        self.parent.as_ref()
    }

    /// Registers a cleanup step while the scope is open and its driver
    /// lives (invariant 2 of `cleanups`).
    pub(crate) fn defer(&self, step: cleanups::Step) -> Result<(), cleanups::Step> {
        if !self.join.try_add() {
            return Err(step);
        }
        let pushed = self.registry.push_cleanup(step, &self.gate);
        self.release();
        pushed
    }

    /// The driver was dropped unfinished: no more cleanup steps; the ones
    /// registered so far.
    pub(crate) fn driver_dropped(&self) -> Vec<cleanups::Step> {
        self.registry.take_cleanups(&self.gate, true)
    }

    /// The steps to run at the scope's exit, once its count is zero.
    pub(crate) fn exit_cleanups(&self) -> Vec<cleanups::Step> {
        if self.gate.any() {
            self.registry.take_cleanups(&self.gate, false)
        } else {
            Vec::new()
        }
    }

    pub(crate) fn limit(&self) -> Option<&Arc<Semaphore>> {
        self.limit.as_ref()
    }

    /// A new task id, unique in this scope.
    pub(crate) fn next_task_id(&self) -> u64 {
        self.next_task.fetch_add(1, Ordering::Relaxed)
    }

    /// Releases one unit of this scope's counter, and of its ancestors'
    /// as their counts reach zero.
    pub(crate) fn release(&self) {
        release_chain(self, |e| &e.join, |e| e.parent.as_deref());
    }

    /// Cancels the scope from inside its machinery (invariant 3 of
    /// `cancel_state`): a callback's panic is recorded, to be resumed when
    /// the scope exits. Returns whether this call cancelled it.
    pub(crate) fn cancel_with(&self, reason: CancelReason) -> bool {
        match self.cancel.cancel(reason) {
            Ok(cancelled) => {
                if cancelled {
                    tracing::debug!(parent: self.span(), reason = ?self.cancel.reason(), "scope cancelled");
                }
                cancelled
            }
            Err(payload) => {
                tracing::error!(parent: self.span(), "an on_cancel callback panicked while the scope was cancelled");
                self.ledger.record_panic(payload);
                true
            }
        }
    }

    /// Notes that the scope was seen cancelled (its driver was woken by the
    /// token); logs it once.
    pub(crate) fn note_cancelled(&self) {
        if self.cancel.note_cancelled() {
            tracing::debug!(parent: self.span(), reason = ?self.cancel.reason(), "scope cancelled");
        }
    }

    /// Records a failure of `who` (the body when `task` is `None`) and
    /// applies the policy (invariant 3).
    pub(crate) fn fail(&self, who: &TaskName, task: Option<u64>, kind: Kind, error: Payload) {
        self.ledger.record(task, kind, error);
        let fails_the_scope = task.is_none() || self.settings.policy == Policy::FailFast;
        if kind == Kind::Real && fails_the_scope {
            // Ordinary cancellation never logs above debug; a real failure
            // that fails the scope does.
            tracing::error!(parent: self.span(), task = %who, "task failed; cancelling its scope");
        }
        if task.is_none() {
            // A failed body ends the scope whatever the policy.
            self.cancel_with(CancelReason::sibling_failed("scope body"));
        } else if kind == Kind::Real && fails_the_scope {
            self.cancel_with(CancelReason::sibling_failed(who.to_string()));
        }
    }

    /// A panic cancels the scope whatever the policy; it is resumed at exit.
    pub(crate) fn panicked(&self, who: &TaskName, payload: PanicPayload) {
        tracing::error!(parent: self.span(), task = %who, "task panicked; cancelling its scope");
        self.ledger.record_panic(payload);
        self.cancel_with(CancelReason::sibling_failed(format!("{who} panicked")));
    }

    /// Task `id`'s name, or its spawn location if it is not tracked yet.
    pub(crate) fn task_name(&self, id: u64, fallback: &TaskName) -> TaskName {
        self.registry
            .name_of(id)
            .unwrap_or_else(|| fallback.clone())
    }

    /// Aborts every task still running here and in every scope opened
    /// inside this one (the grace period is over): orphans of a dropped
    /// nested scope are aborted with the ancestor that waits for them.
    pub(crate) fn abort_running(&self) {
        self.abort_here();
        for scope in self.descendants() {
            scope.abort_here();
        }
    }

    fn abort_here(&self) {
        self.aborting.store(true, Ordering::Relaxed);
        self.registry.abort_running();
    }

    /// Whether the grace period ran out and tasks were aborted.
    pub(crate) fn is_aborting(&self) -> bool {
        self.aborting.load(Ordering::Relaxed)
    }

    /// Every live scope opened inside this one, at any depth, breadth
    /// first (a loop, not recursion).
    pub(crate) fn descendants(&self) -> Vec<Arc<Engine>> {
        let mut found = self.registry.children();
        let mut next = 0;
        while next < found.len() {
            let children = found[next].registry.children();
            found.extend(children);
            next += 1;
        }
        found
    }

    /// Names of the tasks still running here and in nested scopes.
    pub(crate) fn running_names(&self) -> Vec<String> {
        crate::scope::run::tree::snapshot(self)
            .map(|snapshot| snapshot.running_tasks())
            .unwrap_or_default()
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        if let Some((key, _)) = self.listed.get() {
            unlist(self.parent.as_deref(), *key);
        }
        // Invariant 2: unwinding the parent chain by hand, so that the
        // last reference to a deep chain does not drop it recursively.
        let mut parent = self.parent.take();
        while let Some(engine) = parent {
            parent = match Arc::into_inner(engine) {
                Some(mut engine) => engine.parent.take(),
                None => None,
            };
        }
    }
}

fn list_root(scope: Weak<Engine>) -> usize {
    ROOTS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(scope)
}

fn unlist(parent: Option<&Engine>, key: usize) {
    match parent {
        Some(parent) => parent.registry.remove_child(key),
        None => {
            let removed = ROOTS
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .try_remove(key);
            drop(removed);
        }
    }
}

/// The live root scopes.
pub(crate) fn roots() -> Vec<Arc<Engine>> {
    ROOTS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .filter_map(|(_, root)| root.upgrade())
        .collect()
}
