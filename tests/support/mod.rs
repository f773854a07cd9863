//! Helpers shared by the integration tests.

pub mod capture {
    //! A minimal tracing subscriber that records events' levels and fields.
    use std::fmt::Write;
    use std::sync::{Arc, Mutex};
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

    impl Subscriber for Capture {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, attributes: &span::Attributes<'_>) -> span::Id {
            let mut fields = Fields(String::new());
            attributes.record(&mut fields);
            let mut spans = self.1.lock().unwrap();
            spans.push((attributes.metadata().name().to_string(), fields.0));
            span::Id::from_u64(spans.len() as u64)
        }
        fn record(&self, _: &span::Id, _: &span::Record<'_>) {}
        fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}
        fn event(&self, event: &Event<'_>) {
            let mut fields = Fields(String::new());
            event.record(&mut fields);
            self.0
                .lock()
                .unwrap()
                .push((*event.metadata().level(), fields.0));
        }
        fn enter(&self, _: &span::Id) {}
        fn exit(&self, _: &span::Id) {}
    }
}
