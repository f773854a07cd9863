//! Scope-local values: bound when a scope opens, read by everything that
//! runs below it.

use std::any::Any;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use crate::scope::engine::locals::{key_id, Binding, Key, Rule};
use crate::scope::run::current;

/// A key for a value a scope carries down to the tasks and scopes below it:
/// a request id, a tenant, a user, a locale. Declared once as a `static`;
/// a value is bound when a scope opens ([`ScopeBuilder::bind`](crate::ScopeBuilder::bind))
/// and read anywhere below with [`get`](ScopeLocal::get) or
/// [`with`](ScopeLocal::with), which give `None` outside a binding and
/// never panic.
///
/// Every way a task runs below the binding sees the value: `spawn`,
/// `spawn_blocking` (on the blocking thread), `spawn_local`, a
/// [`ScopeHandle`](crate::ScopeHandle)'s spawns from any thread, task sets,
/// `start`, a service's runs, the request scopes of the axum and tonic
/// layers. Values are immutable once bound; a nested scope may bind the key
/// again, which shadows the outer value for that scope and what is below
/// it only. A read costs one scan of the current scope's short list, however
/// far up the value was bound: nothing walks the tree.
///
/// By default a value reaches everything below its scope. A key can say
/// otherwise when it is declared:
/// [`this_scope_only`](ScopeLocal::this_scope_only) (the binding scope's
/// body and its own tasks, not nested scopes) or
/// [`not_into_shields`](ScopeLocal::not_into_shields) (not a
/// [shielded](crate::ScopeBuilder::shielded) scope, such as cleanup that
/// outlives the request, nor anything below one).
///
/// The task tree and `Debug` show which keys a scope binds, by name, never
/// the values (they may be secret).
///
/// ```
/// use taskscope::{ScopeBuilder, ScopeLocal};
///
/// static REQUEST_ID: ScopeLocal<String> = ScopeLocal::new("request_id");
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// assert_eq!(REQUEST_ID.get(), None); // outside any binding
/// ScopeBuilder::new()
///     .bind(&REQUEST_ID, "r-42".to_owned())
///     .run(async |s| {
///         let task = s.spawn(async { Ok::<_, taskscope::Cancelled>(REQUEST_ID.get()) });
///         assert_eq!(task.await?.as_deref(), Some("r-42"));
///         // A nested scope may bind it again, for itself and what is below.
///         ScopeBuilder::new()
///             .bind(&REQUEST_ID, "r-42/retry".to_owned())
///             .run(async |_| {
///                 REQUEST_ID.with(|id| assert_eq!(id.map(String::as_str), Some("r-42/retry")));
///                 Ok::<_, taskscope::Cancelled>(())
///             })
///             .await
///             .unwrap();
///         assert_eq!(REQUEST_ID.get().as_deref(), Some("r-42"));
///         Ok(())
///     })
///     .await
///     .unwrap();
/// # }
/// ```
pub struct ScopeLocal<T: 'static> {
    name: &'static str,
    rule: Rule,
    wire: Option<Wire<T>>,
    value: PhantomData<fn() -> T>,
}

/// How a key's values are written for the next service and read back.
struct Wire<T> {
    encode: fn(&T) -> String,
    decode: fn(&str) -> Option<T>,
}

impl<T> Clone for Wire<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Wire<T> {}

impl<T: Send + Sync + 'static> ScopeLocal<T> {
    /// A key named `name` (for the task tree and `Debug`) whose values
    /// reach every task and scope below the binding. Declare it as a
    /// `static`: a key is told apart from others by its address.
    pub const fn new(name: &'static str) -> Self {
        ScopeLocal {
            name,
            rule: Rule::Inherit,
            wire: None,
            value: PhantomData,
        }
    }

    /// Its values also travel to the next service: the client layers
    /// (`reqwest`'s `cancellable()`, tonic's `DeadlineLayer`) send them as
    /// members of a W3C `baggage` header named after the key, written by
    /// `encode`; a server layer whose
    /// [`RequestScopes`](crate::remote::RequestScopes) [accepts](crate::remote::RequestScopes::accept)
    /// the key binds what `decode` reads from it on the request's scope.
    /// The name must be an HTTP token (letters, digits, `_`, `-`, `.`).
    /// What arrives is untrusted: a value `decode` refuses (`None`) is
    /// skipped, as is a malformed member.
    ///
    /// ```
    /// use taskscope::ScopeLocal;
    ///
    /// static TENANT: ScopeLocal<String> =
    ///     ScopeLocal::new("tenant").across_processes(|t| t.clone(), |s| Some(s.to_owned()));
    /// # let _ = &TENANT;
    /// ```
    pub const fn across_processes(
        mut self,
        encode: fn(&T) -> String,
        decode: fn(&str) -> Option<T>,
    ) -> Self {
        self.wire = Some(Wire { encode, decode });
        self
    }

    /// Its values reach the binding scope's body and its own tasks, not
    /// nested scopes (nor their tasks).
    ///
    /// ```
    /// use taskscope::{ScopeBuilder, ScopeLocal};
    ///
    /// static STEP: ScopeLocal<u32> = ScopeLocal::new("step").this_scope_only();
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// ScopeBuilder::new()
    ///     .bind(&STEP, 1)
    ///     .run(async |s| {
    ///         let own = s.spawn(async { Ok::<_, taskscope::Cancelled>(STEP.get()) });
    ///         assert_eq!(own.await?, Some(1));
    ///         let nested = taskscope::scope(async |_| Ok::<_, taskscope::Cancelled>(STEP.get()));
    ///         assert_eq!(nested.await.unwrap(), None);
    ///         Ok(())
    ///     })
    ///     .await
    ///     .unwrap();
    /// # }
    /// ```
    pub const fn this_scope_only(mut self) -> Self {
        self.rule = Rule::ThisScope;
        self
    }

    /// Its values reach everything below the binding except a
    /// [shielded](crate::ScopeBuilder::shielded) scope and what is below
    /// one: a request's database transaction that cleanup outliving the
    /// request must not use.
    ///
    /// ```
    /// use taskscope::{ScopeBuilder, ScopeLocal};
    ///
    /// static TRANSACTION: ScopeLocal<u64> = ScopeLocal::new("transaction").not_into_shields();
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// ScopeBuilder::new()
    ///     .bind(&TRANSACTION, 7)
    ///     .run(async |_| {
    ///         let seen = taskscope::scope(async |_| Ok::<_, taskscope::Cancelled>(TRANSACTION.get()));
    ///         assert_eq!(seen.await.unwrap(), Some(7));
    ///         let cleanup = ScopeBuilder::new()
    ///             .shielded(std::time::Duration::from_secs(5))
    ///             .run(async |_| Ok::<_, taskscope::Cancelled>(TRANSACTION.get()));
    ///         assert_eq!(cleanup.await.unwrap(), None);
    ///         Ok::<_, taskscope::Cancelled>(())
    ///     })
    ///     .await
    ///     .unwrap();
    /// # }
    /// ```
    pub const fn not_into_shields(mut self) -> Self {
        self.rule = Rule::NotIntoShields;
        self
    }

    /// The key's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// A clone of the value the current scope sees for this key; `None`
    /// outside a binding (and outside any scope).
    pub fn get(&'static self) -> Option<T>
    where
        T: Clone,
    {
        self.with(|value| value.cloned())
    }

    /// Calls `f` with the value the current scope sees for this key, or
    /// `None`: no clone of the value.
    pub fn with<R>(&'static self, f: impl FnOnce(Option<&T>) -> R) -> R {
        let value = self.lookup();
        f(value.as_deref().and_then(|v| v.downcast_ref::<T>()))
    }

    /// The bound value, shared; taken out of the ambient scope before `f`
    /// runs, so `f` may read other keys or the token.
    fn lookup(&'static self) -> Option<Arc<dyn Any + Send + Sync>> {
        let key = self.key();
        current::with(|ambient| {
            let locals = ambient?.engine.locals()?;
            locals.get(key).cloned()
        })
    }

    fn key(&'static self) -> usize {
        key_id(self)
    }

    /// `value` bound to this key, for a scope's builder.
    pub(crate) fn binding(&'static self, value: T) -> Binding {
        Binding {
            key: self,
            rule: self.rule,
            value: Arc::new(value),
        }
    }

    /// A value read from the next service's side of the wire, if the key
    /// travels and `decode` accepts it.
    pub(crate) fn decode_wire(&self, text: &str) -> Option<T> {
        (self.wire?.decode)(text)
    }
}

impl<T: Send + Sync + 'static> Key for ScopeLocal<T> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn to_wire(&self, value: &(dyn Any + Send + Sync)) -> Option<String> {
        let wire = self.wire?;
        value.downcast_ref::<T>().map(wire.encode)
    }
}

impl<T> fmt::Debug for ScopeLocal<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopeLocal")
            .field("name", &self.name)
            .field("rule", &self.rule)
            .field("across_processes", &self.wire.is_some())
            .finish()
    }
}
