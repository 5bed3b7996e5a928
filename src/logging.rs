//! Logs go to stderr, one line each, `warning: …` style. Verbose mode adds debug lines. Every
//! line is sanitized like an error line, so a logged manifest string cannot forge a line.
//!
//! secretsubst logs events and opens no spans, so a subscriber of its own does the whole job: a
//! tracing-subscriber stack (registry, span slab, layered filter) cost the short runs Argo CD
//! makes more start-up time than all of their logging.

use std::fmt::{self, Write as _};
use std::io::Write as _;

use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};

/// Only secretsubst's own events are shown: libraries' debug logs may carry tokens or payloads.
pub fn init(verbose: bool) {
    let max = if verbose { Level::DEBUG } else { Level::WARN };
    let lines = Lines {
        max,
        // One write per line, so lines from concurrent tasks never interleave.
        write: |line: &str| {
            let _ = std::io::stderr().write_all(line.as_bytes());
        },
    };
    // Only fails if a subscriber is already set, which leaves logging working.
    let _ = tracing::subscriber::set_global_default(lines);
}

/// Writes each enabled event as one line through `write`.
struct Lines<W> {
    max: Level,
    write: W,
}

impl<W: Fn(&str) + Send + Sync + 'static> Subscriber for Lines<W> {
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        match self.enabled(metadata) {
            true => Interest::always(),
            false => Interest::never(),
        }
    }

    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        let target = metadata.target();
        let ours = target
            .strip_prefix(env!("CARGO_CRATE_NAME"))
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"));
        ours && metadata.is_event() && *metadata.level() <= self.max
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(LevelFilter::from_level(self.max))
    }

    fn event(&self, event: &Event<'_>) {
        let level = match *event.metadata().level() {
            Level::ERROR => "error",
            Level::WARN => "warning",
            Level::INFO => "info",
            Level::DEBUG | Level::TRACE => "debug",
        };
        let mut fields = Fields::default();
        event.record(&mut fields);
        (self.write)(&format!(
            "{level}: {}\n",
            crate::error::sanitize(&fields.text)
        ));
    }

    // No span is ever enabled (see `enabled`), so these are never called with one.
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

/// An event's fields as tracing-subscriber's default format writes them: the message, then
/// ` name=value` for each other field.
#[derive(Default)]
struct Fields {
    text: String,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let gap = if self.text.is_empty() { "" } else { " " };
        let _ = match field.name() {
            "message" => write!(self.text, "{gap}{value:?}"),
            name => write!(self.text, "{gap}{name}={value:?}"),
        };
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// The lines `log` writes with a subscriber at `max`.
    fn logged(max: Level, log: impl FnOnce()) -> String {
        let out = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&out);
        let lines = Lines {
            max,
            write: move |line: &str| sink.lock().unwrap().push_str(line),
        };
        tracing::subscriber::with_default(lines, log);
        out.lock().unwrap().clone()
    }

    #[test]
    fn events_are_lines_named_by_level_with_their_fields_after_the_message() {
        let text = logged(Level::DEBUG, || {
            tracing::warn!("vault: cannot cache the token");
            tracing::debug!(attempt = 2, "retrying {}", "secret/app");
            tracing::error!("failed");
        });
        assert_eq!(
            text,
            "warning: vault: cannot cache the token\ndebug: retrying secret/app attempt=2\nerror: failed\n"
        );
    }

    #[test]
    fn debug_lines_need_verbose_mode() {
        let text = logged(Level::WARN, || {
            tracing::debug!("hidden");
            tracing::info!("hidden too");
            tracing::warn!("shown");
        });
        assert_eq!(text, "warning: shown\n");
    }

    #[test]
    fn other_crates_events_are_never_shown() {
        let text = logged(Level::TRACE, || {
            tracing::warn!(target: "hyper::proto", "token in a header");
            tracing::warn!(target: "secretsubstx", "a crate with a longer name");
            tracing::warn!(target: "secretsubst::backend", "ours");
        });
        assert_eq!(text, "warning: ours\n");
    }

    #[test]
    fn a_logged_line_break_cannot_forge_a_line() {
        let text = logged(Level::WARN, || {
            tracing::warn!("key {:?}", "a\nerror: forged");
            tracing::warn!("key {}", "a\nerror: forged");
        });
        assert_eq!(text.lines().count(), 2, "{text}");
    }
}
