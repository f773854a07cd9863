//! Helpers shared by the integration tests.

use taskscope::Cancelled;

/// Waits on the current token, then fails with its reason: a well-behaved
/// task.
#[allow(dead_code)] // not every test binary uses it
pub async fn until_cancelled() -> Result<(), Cancelled> {
    let token = taskscope::token();
    token.cancelled().await;
    Err(Cancelled::new(token.reason().unwrap()))
}

#[allow(dead_code)] // not every test binary captures tracing
pub mod capture {
    //! A minimal tracing subscriber that records events' levels and fields.
    //!
    //! It is installed as the *global* default, enabled for everything, and
    //! forwards to the capture of the current thread. A thread-local
    //! `set_default` would race with other tests of the same binary over
    //! tracing's per-callsite interest cache, and sometimes miss events.
    use std::cell::RefCell;
    use std::fmt::Write;
    use std::sync::{Arc, Mutex, Once};
    use tracing::field::{Field, Visit};
    use tracing::{span, Event, Level, Metadata, Subscriber};

    /// Events as (level, fields); spans as (name, fields) in `spans`.
    #[derive(Clone, Default)]
    pub struct Capture(
        pub Arc<Mutex<Vec<(Level, String)>>>,
        pub Arc<Mutex<Vec<(String, String)>>>,
    );

    struct Fields(String);
    impl Visit for Fields {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            let _ = write!(self.0, "{}={:?} ", field.name(), value);
        }
    }

    thread_local! {
        static CURRENT: RefCell<Option<Capture>> = const { RefCell::new(None) };
    }

    /// Stops capturing on this thread when dropped.
    pub struct Installed;

    impl Drop for Installed {
        fn drop(&mut self) {
            CURRENT.with(|c| c.borrow_mut().take());
        }
    }

    impl Capture {
        /// Captures what this thread records until the guard is dropped.
        pub fn install(&self) -> Installed {
            static GLOBAL: Once = Once::new();
            GLOBAL.call_once(|| {
                let _ = tracing::subscriber::set_global_default(Forward);
            });
            CURRENT.with(|c| *c.borrow_mut() = Some(self.clone()));
            Installed
        }

        fn new_span(&self, attributes: &span::Attributes<'_>) -> span::Id {
            let mut fields = Fields(String::new());
            attributes.record(&mut fields);
            let mut spans = self.1.lock().unwrap();
            spans.push((attributes.metadata().name().to_string(), fields.0));
            span::Id::from_u64(spans.len() as u64)
        }
        fn event(&self, event: &Event<'_>) {
            let mut fields = Fields(String::new());
            event.record(&mut fields);
            self.0
                .lock()
                .unwrap()
                .push((*event.metadata().level(), fields.0));
        }
    }

    /// The global subscriber: forwards to the current thread's capture.
    struct Forward;

    impl Subscriber for Forward {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, attributes: &span::Attributes<'_>) -> span::Id {
            CURRENT
                .with(|c| {
                    c.borrow()
                        .as_ref()
                        .map(|capture| capture.new_span(attributes))
                })
                .unwrap_or_else(|| span::Id::from_u64(u64::MAX))
        }
        fn record(&self, _: &span::Id, _: &span::Record<'_>) {}
        fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}
        fn event(&self, event: &Event<'_>) {
            CURRENT.with(|c| {
                if let Some(capture) = c.borrow().as_ref() {
                    capture.event(event);
                }
            });
        }
        fn enter(&self, _: &span::Id) {}
        fn exit(&self, _: &span::Id) {}
    }
}
