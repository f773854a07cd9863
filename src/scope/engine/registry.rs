//! The task registry: one map of a scope's tasks (name, abort handle, age
//! and own token) and the list of scopes opened inside it.
//!
//! # Invariants
//!
//! 1. Every task spawned since the last sweep has an entry under its id,
//!    so the scope can name and abort the live ones. A task's entry may be
//!    made by the task itself (asking for its own token) before the spawner
//!    fills in its abort handle; nothing sweeps an entry without one.
//! 2. Finished tasks are swept only when the map would grow: amortised
//!    O(1), and the map never holds more than about twice the tasks alive at
//!    its peak. A task that completes does not lock the registry, unless
//!    it has an own token to unlink.
//! 3. A task's own token is linked to the scope's token from its creation
//!    until the task ends, when its guard unlinks it ([`Registry::forget_own`]),
//!    so nothing grows with churn.
//! 4. A child scope is listed from when it opens until it is dropped (it
//!    removes itself), so the list holds live scopes only and a finished
//!    scope's memory is freed at once.
//! 5. The lock is held for map operations only: never while user code,
//!    a cancellation or an abort runs, and no other lock is taken under it.
//!
//! The registry does not know what a child scope is: it keeps `Weak<C>`.

use std::collections::HashMap;
use std::future::Future;
use std::hash::{BuildHasherDefault, Hasher};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use slab::Slab;
use tokio::task::{AbortHandle, JoinHandle};

use crate::cancel::{process_epoch, CancellationToken, ChildToken};
use crate::scope::engine::cleanups::{Gate, Step};
use crate::scope::engine::one_lock::Locked;
use crate::scope::engine::settings::TaskName;

/// A task as its scope sees it.
struct Tracked {
    name: Option<TaskName>,
    abort: Option<AbortHandle>,
    /// When it was spawned: nanoseconds of the wall clock since the
    /// process's first task (not tokio's clock, whose paused form costs a
    /// context lookup on every spawn; and 8 bytes, not 16).
    started: u64,
    aborted: bool,
    own: Option<ChildToken>,
}

impl Tracked {
    fn is_finished(&self) -> bool {
        self.abort.as_ref().is_some_and(AbortHandle::is_finished)
    }

    fn is_running(&self) -> bool {
        self.abort
            .as_ref()
            .is_some_and(|abort| !abort.is_finished())
    }
}

/// A live task, as the tree shows it.
pub(crate) struct RunningTask {
    pub(crate) name: TaskName,
    pub(crate) age: Duration,
    pub(crate) aborted: bool,
}

struct State<C> {
    tasks: HashMap<u64, Tracked, BuildHasherDefault<IdHasher>>,
    children: Slab<Weak<C>>,
    /// What the scope's owner says it is doing (a service's phase), for
    /// the tree.
    status: Option<Arc<str>>,
    /// The cleanup steps registered with `defer`, oldest first.
    cleanups: Vec<Step>,
    /// The task running them at the scope's exit, while its driver waits.
    runner: Option<JoinHandle<()>>,
}

impl<C> Default for State<C> {
    fn default() -> Self {
        State {
            tasks: HashMap::default(),
            children: Slab::new(),
            status: None,
            cleanups: Vec::new(),
            runner: None,
        }
    }
}

/// One scope's tasks and child scopes.
pub(crate) struct Registry<C> {
    /// Allocated on first use: a scope that spawns nothing and opens no
    /// scope carries one word.
    state: Mutex<Option<Box<State<C>>>>,
    /// How many tasks have an own token: when zero, a finishing task skips
    /// the lock.
    owned: AtomicUsize,
}

impl<C> Default for Registry<C> {
    fn default() -> Self {
        Registry {
            state: Mutex::new(None),
            owned: AtomicUsize::new(0),
        }
    }
}

impl<C> Registry<C> {
    fn lock(&self) -> Locked<MutexGuard<'_, Option<Box<State<C>>>>> {
        // No code that can panic runs under the lock (invariant 5).
        Locked::new(self.state.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Sets (or, with `None`, clears) the status the tree shows.
    pub(crate) fn set_status(&self, status: Option<Arc<str>>) {
        self.lock().get_or_insert_default().status = status;
    }

    /// Registers a cleanup step, unless `gate` says the scope's driver is
    /// gone (under the lock: invariant 2 of `cleanups`).
    pub(crate) fn push_cleanup(&self, step: Step, gate: &Gate) -> Result<(), Step> {
        let mut state = self.lock();
        if !gate.admit() {
            return Err(step);
        }
        state.get_or_insert_default().cleanups.push(step);
        Ok(())
    }

    /// The registered cleanup steps, taken (invariant 1 of `cleanups`);
    /// with `close`, under the same lock, the driver is marked gone.
    pub(crate) fn take_cleanups(&self, gate: &Gate, close: bool) -> Vec<Step> {
        let mut state = self.lock();
        if close {
            gate.close();
        }
        match state.as_mut() {
            Some(state) => std::mem::take(&mut state.cleanups),
            None => Vec::new(),
        }
    }

    /// Keeps the handle of the task running the cleanup steps.
    pub(crate) fn set_runner(&self, runner: JoinHandle<()>) {
        self.lock().get_or_insert_default().runner = Some(runner);
    }

    /// Ready once the cleanup runner has finished, or if there is none.
    pub(crate) fn poll_runner(&self, cx: &mut Context<'_>) -> Poll<()> {
        // Polled outside the lock; only the scope's driver polls it.
        let Some(mut runner) = self.lock().as_mut().and_then(|s| s.runner.take()) else {
            return Poll::Ready(());
        };
        // The runner catches the steps' panics: how it ended says nothing.
        if Pin::new(&mut runner).poll(cx).is_pending() {
            self.set_runner(runner);
            return Poll::Pending;
        }
        Poll::Ready(())
    }

    /// The status the tree shows, if one is set.
    pub(crate) fn status(&self) -> Option<Arc<str>> {
        self.lock().as_ref()?.status.clone()
    }

    /// Remembers task `id`, spawned as `abort` (invariant 1).
    pub(crate) fn track(&self, id: u64, name: TaskName, abort: AbortHandle) {
        let mut state = self.lock();
        let tasks = &mut state.get_or_insert_default().tasks;
        if tasks.len() == tasks.capacity() {
            // Invariant 2: sweep before growing.
            tasks.retain(|_, task| !task.is_finished());
            let live = tasks.len();
            tasks.reserve(live.max(4));
        }
        let entry = tasks.entry(id).or_insert_with(|| Tracked {
            name: None,
            abort: None,
            started: now(),
            aborted: false,
            own: None,
        });
        entry.name = Some(name);
        entry.abort = Some(abort);
    }

    /// Task `id`'s name, if it is known; `None` if it is not tracked yet.
    pub(crate) fn name_of(&self, id: u64) -> Option<TaskName> {
        let state = self.lock();
        state
            .as_ref()?
            .tasks
            .get(&id)
            .and_then(|task| task.name.clone())
    }

    /// Task `id`'s own token (a child of `scope`), created on first use.
    pub(crate) fn own_token(&self, id: u64, scope: &CancellationToken) -> CancellationToken {
        let mut state = self.lock();
        let task = state
            .get_or_insert_default()
            .tasks
            .entry(id)
            .or_insert_with(|| Tracked {
                name: None,
                abort: None,
                started: now(),
                aborted: false,
                own: None,
            });
        match &task.own {
            Some(own) => own.token(),
            None => {
                // Linking takes the scope node's lock, never ours: no order.
                let own = ChildToken::new(scope);
                let token = own.token();
                task.own = Some(own);
                self.owned.fetch_add(1, Ordering::Relaxed);
                token
            }
        }
    }

    /// Whether task `id` is cancelled: its own token if it has one, else
    /// `scope`'s.
    pub(crate) fn is_cancelled(&self, id: u64, scope: &CancellationToken) -> bool {
        if self.owned.load(Ordering::Relaxed) > 0 {
            let state = self.lock();
            let task = state.as_ref().and_then(|state| state.tasks.get(&id));
            if let Some(own) = task.and_then(|t| t.own.as_ref()) {
                return own.is_cancelled();
            }
        }
        scope.is_cancelled()
    }

    /// Unlinks task `id`'s own token from `scope`, if it had one
    /// (invariant 3). Called once, when the task ends.
    pub(crate) fn forget_own(&self, id: u64, scope: &CancellationToken) {
        if self.owned.load(Ordering::Relaxed) == 0 {
            return;
        }
        let own = {
            let mut state = self.lock();
            let Some(state) = state.as_mut() else {
                return;
            };
            let own = state.tasks.get_mut(&id).and_then(|task| task.own.take());
            if own.is_some() {
                self.owned.fetch_sub(1, Ordering::Relaxed);
            }
            // A task that made its entry itself and was never tracked (its
            // spawn failed) has nothing left to show.
            if state.tasks.get(&id).is_some_and(|t| t.abort.is_none()) {
                state.tasks.remove(&id);
            }
            own
        };
        if let Some(own) = own {
            own.unlink(scope);
        }
    }

    /// Aborts every task still running (the grace period is over).
    pub(crate) fn abort_running(&self) {
        let mut guard = self.lock();
        let Some(state) = guard.as_mut() else {
            return;
        };
        let running: Vec<AbortHandle> = state
            .tasks
            .values_mut()
            .filter(|task| task.is_running())
            .filter_map(|task| {
                task.aborted = true;
                task.abort.clone()
            })
            .collect();
        drop(guard);
        // Outside the lock: aborting can drop a future, which runs user code.
        for task in running {
            task.abort();
        }
    }

    /// The tasks still running, oldest first.
    pub(crate) fn running(&self) -> Vec<RunningTask> {
        let guard = self.lock();
        let Some(state) = guard.as_ref() else {
            return Vec::new();
        };
        let mut tasks: Vec<(u64, RunningTask)> = state
            .tasks
            .values()
            .filter(|task| task.is_running())
            .map(|task| {
                let name = task.name.clone().expect("a tracked task has a name");
                let running = RunningTask {
                    name,
                    age: Duration::from_nanos(now().saturating_sub(task.started)),
                    aborted: task.aborted,
                };
                (task.started, running)
            })
            .collect();
        drop(guard);
        tasks.sort_by_key(|(started, _)| *started);
        tasks.into_iter().map(|(_, task)| task).collect()
    }

    /// Remembers a scope opened inside this one, until it is dropped
    /// ([`Registry::remove_child`] with the key returned here).
    pub(crate) fn add_child(&self, child: Weak<C>) -> usize {
        self.lock().get_or_insert_default().children.insert(child)
    }

    /// Forgets a child scope that is being dropped.
    pub(crate) fn remove_child(&self, key: usize) {
        let removed = match self.lock().as_mut() {
            Some(state) => state.children.try_remove(key),
            None => None,
        };
        debug_assert!(removed.is_some(), "a child scope was unlisted twice");
        // The weak reference is released outside the lock.
        drop(removed);
    }

    /// The scopes opened inside this one that are still alive.
    pub(crate) fn children(&self) -> Vec<std::sync::Arc<C>> {
        match self.lock().as_ref() {
            Some(state) => state
                .children
                .iter()
                .filter_map(|(_, child)| child.upgrade())
                .collect(),
            None => Vec::new(),
        }
    }
}

/// Nanoseconds since the process's epoch.
fn now() -> u64 {
    u64::try_from(process_epoch().elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// Task ids are sequential: a multiplicative hash spreads them over the
/// map's buckets (and over the top bits it uses as tags) for one multiply.
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(byte)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, id: u64) {
        self.0 = id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}
