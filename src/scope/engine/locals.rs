//! What a scope carries down to everything below it: the scope-local
//! values it sees (what its parent passes down, then its own bindings), and
//! the two settings inherited from the nearest scope that set them (the
//! shutdown grace, reporting to stderr). Computed once when the scope opens
//! and never changed, so a read is one scan of a short list on the current
//! scope, however far up the value was bound; nothing walks the tree.
//!
//! # Invariants
//!
//! 1. A scope that binds and sets nothing, under a parent whose values
//!    all pass down unchanged, shares its parent's list (one reference
//!    count); a scope under no binding or setting at all holds nothing.
//! 2. A key appears at most once in a list: a nested binding replaces the
//!    outer one for the scope and everything below it.
//! 3. A value bound with [`Rule::ThisScope`] is in the binding scope's list
//!    only; one bound with [`Rule::NotIntoShields`] is left out of a
//!    shielded scope's list, and so of everything below it.

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

/// How far down a bound value travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Rule {
    /// Every task and nested scope below the binding sees it.
    Inherit,
    /// The binding scope's body and its own tasks, not nested scopes.
    ThisScope,
    /// Everything below, except a shielded scope and what is below it.
    NotIntoShields,
}

/// A key, as the engine sees it: a `static` (its address is its
/// identity), a name, and how a value travels to the next service.
pub(crate) trait Key: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    /// `value` as sent to the next service; `None` if the key does not
    /// travel.
    fn to_wire(&self, value: &(dyn Any + Send + Sync)) -> Option<String>;
}

/// A value bound to a key.
#[derive(Clone)]
pub(crate) struct Binding {
    pub(crate) key: &'static dyn Key,
    pub(crate) rule: Rule,
    pub(crate) value: Arc<dyn Any + Send + Sync>,
}

impl Binding {
    /// The key's identity: its address.
    fn id(&self) -> usize {
        key_id(self.key)
    }
}

/// A key's identity: the address of its `static`.
pub(crate) fn key_id(key: &'static dyn Key) -> usize {
    key as *const dyn Key as *const () as usize
}

#[derive(Clone)]
struct Entry {
    binding: Binding,
    /// Bound by the scope this list belongs to (not inherited).
    here: bool,
}

/// What one scope carries.
pub(crate) struct Locals {
    entries: Vec<Entry>,
    shutdown_grace: Option<Duration>,
    stderr_reports: bool,
}

/// The settings a scope sets for itself and what is below it.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Inherited {
    pub(crate) shutdown_grace: Option<Duration>,
    pub(crate) stderr_reports: bool,
}

impl Locals {
    /// The list of a scope opened below `parent`'s list, shielded or not,
    /// binding `own` and setting `set` (invariants 1–3).
    pub(crate) fn open(
        parent: Option<&Arc<Locals>>,
        shielded: bool,
        own: Vec<Binding>,
        set: Inherited,
    ) -> Option<Arc<Locals>> {
        let passes = |entry: &Entry| match entry.binding.rule {
            Rule::Inherit => true,
            Rule::ThisScope => !entry.here,
            Rule::NotIntoShields => !shielded,
        };
        let sets_nothing = set.shutdown_grace.is_none() && !set.stderr_reports;
        if own.is_empty() && sets_nothing {
            let parent = parent?;
            if parent.entries.iter().all(|e| passes(e) && !e.here) {
                return Some(Arc::clone(parent));
            }
        }
        let shutdown_grace = set
            .shutdown_grace
            .or_else(|| parent.and_then(|p| p.shutdown_grace));
        let stderr_reports = set.stderr_reports || parent.is_some_and(|p| p.stderr_reports);
        let mut entries: Vec<Entry> = parent
            .into_iter()
            .flat_map(|p| p.entries.iter())
            .filter(|e| passes(e))
            .map(|e| Entry {
                binding: e.binding.clone(),
                here: false,
            })
            .collect();
        for binding in own {
            entries.retain(|e| e.binding.id() != binding.id());
            entries.push(Entry {
                binding,
                here: true,
            });
        }
        if entries.is_empty() && shutdown_grace.is_none() && !stderr_reports {
            return None;
        }
        Some(Arc::new(Locals {
            entries,
            shutdown_grace,
            stderr_reports,
        }))
    }

    /// The shutdown grace set on this scope or the nearest above it.
    pub(crate) fn shutdown_grace(&self) -> Option<Duration> {
        self.shutdown_grace
    }

    /// Whether this scope or one above it asked for reports on stderr.
    pub(crate) fn stderr_reports(&self) -> bool {
        self.stderr_reports
    }

    /// The value bound to `key`, if this scope sees one.
    pub(crate) fn get(&self, key: usize) -> Option<&Arc<dyn Any + Send + Sync>> {
        self.entries
            .iter()
            .find(|e| e.binding.id() == key)
            .map(|e| &e.binding.value)
    }

    /// The names of the keys this scope binds itself (never the values:
    /// they may be secret).
    pub(crate) fn bound_here(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.entries
            .iter()
            .filter(|e| e.here)
            .map(|e| e.binding.key.name())
    }

    /// Every value that travels to the next service, encoded, with its
    /// key's name.
    pub(crate) fn to_wire(&self) -> impl Iterator<Item = (&'static str, String)> + '_ {
        self.entries.iter().filter_map(|e| {
            let binding = &e.binding;
            Some((binding.key.name(), binding.key.to_wire(&*binding.value)?))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Not zero-sized: keys are told apart by address.
    struct TestKey(#[allow(dead_code)] u8);

    impl Key for TestKey {
        fn name(&self) -> &'static str {
            "k"
        }
        fn to_wire(&self, _value: &(dyn Any + Send + Sync)) -> Option<String> {
            None
        }
    }

    static KEYS: [TestKey; 4] = [TestKey(0), TestKey(1), TestKey(2), TestKey(3)];

    fn binding(key: usize, rule: Rule, value: u32) -> Binding {
        Binding {
            key: &KEYS[key],
            rule,
            value: Arc::new(value),
        }
    }

    fn read(locals: Option<&Arc<Locals>>, key: usize) -> Option<u32> {
        locals?
            .get(key_id(&KEYS[key]))?
            .downcast_ref::<u32>()
            .copied()
    }

    #[test]
    fn nothing_bound_holds_nothing_and_an_unchanged_list_is_shared() {
        assert!(Locals::open(None, false, Vec::new(), Inherited::default()).is_none());
        let outer = Locals::open(
            None,
            false,
            vec![binding(1, Rule::Inherit, 7)],
            Inherited::default(),
        );
        let inner = Locals::open(outer.as_ref(), false, Vec::new(), Inherited::default());
        // Bound "here" in the outer list, so the inner one is a new list
        // once; below it, lists are shared.
        let below = Locals::open(inner.as_ref(), false, Vec::new(), Inherited::default());
        assert!(Arc::ptr_eq(
            inner.as_ref().unwrap(),
            below.as_ref().unwrap()
        ));
        assert_eq!(read(below.as_ref(), 1), Some(7));
    }

    #[test]
    fn a_nested_binding_shadows_and_rules_stop_where_they_say() {
        let outer = Locals::open(
            None,
            false,
            vec![
                binding(1, Rule::Inherit, 1),
                binding(2, Rule::ThisScope, 2),
                binding(3, Rule::NotIntoShields, 3),
            ],
            Inherited::default(),
        );
        assert_eq!(read(outer.as_ref(), 2), Some(2));
        let nested = Locals::open(
            outer.as_ref(),
            false,
            vec![binding(1, Rule::Inherit, 10)],
            Inherited::default(),
        );
        assert_eq!(read(nested.as_ref(), 1), Some(10));
        assert_eq!(read(nested.as_ref(), 2), None);
        assert_eq!(read(nested.as_ref(), 3), Some(3));
        assert_eq!(read(outer.as_ref(), 1), Some(1));
        let shield = Locals::open(nested.as_ref(), true, Vec::new(), Inherited::default());
        assert_eq!(read(shield.as_ref(), 3), None);
        assert_eq!(read(shield.as_ref(), 1), Some(10));
        let below_shield = Locals::open(shield.as_ref(), false, Vec::new(), Inherited::default());
        assert_eq!(read(below_shield.as_ref(), 3), None);
        let names: Vec<_> = nested.as_ref().unwrap().bound_here().collect();
        assert_eq!(names, ["k"]);
    }
}
