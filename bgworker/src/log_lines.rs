//! Log lines from threads that must not call PostgreSQL: a background worker's tokio
//! threads may not `elog`, so their `tracing` events are kept here as text and the
//! worker's main thread writes them to the server log. At most [`KEEP`] lines wait; more
//! are counted and reported as dropped, so a failure that repeats fast cannot fill memory.

use std::collections::VecDeque;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// Lines waiting at most.
pub const KEEP: usize = 64;

/// A line: whether it is a warning (else informational), and its text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    pub warning: bool,
    pub text: String,
}

/// A `tracing` subscriber keeping INFO and more severe events as lines.
#[derive(Clone, Default)]
pub struct LogLines {
    lines: Arc<Mutex<VecDeque<Line>>>,
    dropped: Arc<AtomicU64>,
    next_span: Arc<AtomicU64>,
}

impl LogLines {
    pub fn new() -> LogLines {
        LogLines::default()
    }

    /// The lines kept since the last call, and how many were dropped meanwhile.
    pub fn take(&self) -> (Vec<Line>, u64) {
        let lines = self.lines.lock().unwrap().drain(..).collect();
        (lines, self.dropped.swap(0, Ordering::Relaxed))
    }

    fn push(&self, line: Line) {
        let mut l = self.lines.lock().unwrap();
        if l.len() >= KEEP {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        } else {
            l.push_back(line);
        }
    }
}

/// The message first, then the other fields as `name=value`.
#[derive(Default)]
struct Text {
    message: String,
    fields: String,
}

impl Visit for Text {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={value}", field.name());
        }
    }
}

impl Subscriber for LogLines {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        *metadata.level() <= Level::INFO
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(self.next_span.fetch_add(1, Ordering::Relaxed) + 1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut t = Text::default();
        event.record(&mut t);
        self.push(Line {
            warning: *event.metadata().level() <= Level::WARN,
            text: format!("{}{}", t.message, t.fields),
        });
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_become_lines_with_their_fields() {
        let lines = LogLines::new();
        tracing::subscriber::with_default(lines.clone(), || {
            tracing::warn!(bridge = "b1", "cannot start");
            tracing::info!("relaying");
            tracing::debug!("not kept");
        });
        let (got, dropped) = lines.take();
        assert_eq!(dropped, 0);
        assert_eq!(
            got,
            [
                Line {
                    warning: true,
                    text: "cannot start bridge=b1".into()
                },
                Line {
                    warning: false,
                    text: "relaying".into()
                },
            ]
        );
        assert!(lines.take().0.is_empty());
    }

    #[test]
    fn a_flood_keeps_the_first_lines_and_counts_the_rest() {
        let lines = LogLines::new();
        tracing::subscriber::with_default(lines.clone(), || {
            for i in 0..KEEP + 10 {
                tracing::warn!("failure {i}");
            }
        });
        let (got, dropped) = lines.take();
        assert_eq!(got.len(), KEEP);
        assert_eq!(dropped, 10);
    }
}
