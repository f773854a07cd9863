//! A bare child token for the crate's own use: linked to one parent, no
//! timer, no public source. Scopes give each task that asks one (its own
//! token), so it is kept to a node and a key.

use super::node::{self, Handler, Node};
use super::reason::{CancelReason, SharedReason};
use super::token::CancellationToken;
use crate::loom::sync::Arc;

pub(crate) struct ChildToken {
    node: Arc<Node>,
    /// The key in the parent's registry; [`UNLINKED`] if the parent was
    /// already cancelled (then so is this one) or can never be. (A plain
    /// word: a task with its own token keeps one of these.)
    key: usize,
}

/// The key of a child token that is in no registry.
const UNLINKED: usize = usize::MAX;

impl ChildToken {
    /// A token cancelled when `parent` is, or alone by [`ChildToken::cancel`].
    pub(crate) fn new(parent: &CancellationToken) -> Self {
        let node = Node::new();
        let key = match parent.node() {
            None => UNLINKED,
            Some(parent) => match parent.register(Handler::Child(Arc::clone(&node))) {
                Ok(key) => {
                    // After registering (deadline.rs, invariant 2).
                    node.deadline().lower(parent.deadline().get());
                    key
                }
                Err(handler) => {
                    drop(handler);
                    if let Some(origin) = parent.origin() {
                        node::cancel(&node, origin.root_reason(), true);
                    }
                    UNLINKED
                }
            },
        };
        ChildToken { node, key }
    }

    pub(crate) fn token(&self) -> CancellationToken {
        CancellationToken::from_node(Arc::clone(&self.node))
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.node.is_cancelled()
    }

    /// Unlinks from `parent`, which must be the one given to `new`.
    pub(crate) fn unlink(self, parent: &CancellationToken) {
        if let (true, Some(parent)) = (self.key != UNLINKED, parent.node()) {
            drop(parent.deregister(self.key));
        }
    }
}

/// Cancels the source behind `token` (crate-internal: only the owner of a
/// [`ChildToken`] may call it).
pub(crate) fn cancel_child(token: &CancellationToken, reason: CancelReason) {
    if let Some(node) = token.node() {
        node::cancel(node, SharedReason::new(reason), false);
    }
}
