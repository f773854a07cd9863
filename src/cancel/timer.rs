//! The timer behind `with_timeout`, `with_deadline` and `cancel_after`.
//!
//! One tokio task per armed timer sleeps on tokio's clock (so
//! `tokio::time::pause()` makes tests deterministic) and then cancels the
//! node with its reason ([`CancelReason::Timeout`] unless the source said
//! otherwise). Re-arming aborts the previous task;
//! so does dropping the source, which leaves no timer behind.

use std::sync::PoisonError;

use tokio::task::AbortHandle;
use tokio::time::Instant;

use super::node::{self, Node};
use super::reason::{CancelReason, SharedReason};
use crate::loom::sync::{Arc, Mutex};

#[derive(Default)]
pub(crate) struct Timer {
    task: Mutex<Option<AbortHandle>>,
}

impl Timer {
    /// Cancels `node` at `deadline`, replacing any earlier deadline; `None`
    /// means never. A deadline already past cancels at once.
    ///
    /// # Panics
    ///
    /// If a future deadline is set outside a Tokio runtime.
    pub(crate) fn set(&self, node: &Arc<Node>, deadline: Option<Instant>, reason: CancelReason) {
        if node.is_cancelled() {
            return;
        }
        let new_task = match deadline {
            None => None,
            Some(deadline) if deadline <= Instant::now() => {
                self.replace(None);
                node::cancel(node, SharedReason::new(reason), false);
                return;
            }
            Some(deadline) => {
                let runtime = tokio::runtime::Handle::try_current().expect(
                    "a taskscope timeout or deadline must be set from within a Tokio runtime",
                );
                let node = Arc::clone(node);
                let task = runtime.spawn(async move {
                    tokio::time::sleep_until(deadline).await;
                    node::cancel(&node, SharedReason::new(reason), false);
                });
                Some(task.abort_handle())
            }
        };
        self.replace(new_task);
    }

    fn replace(&self, task: Option<AbortHandle>) {
        let old = std::mem::replace(
            &mut *self.task.lock().unwrap_or_else(PoisonError::into_inner),
            task,
        );
        if let Some(old) = old {
            old.abort();
        }
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        if let Some(task) = self
            .task
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            task.abort();
        }
    }
}
