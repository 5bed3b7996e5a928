//! Logs go to stderr, one line each, `warning: …` style. Verbose mode adds debug lines. Every
//! line is sanitized like an error line, so a logged manifest string cannot forge a line.

use std::fmt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::FmtContext;
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;

struct Plain;

impl<S, N> FormatEvent<S, N> for Plain
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let level = match *event.metadata().level() {
            Level::ERROR => "error",
            Level::WARN => "warning",
            Level::INFO => "info",
            Level::DEBUG | Level::TRACE => "debug",
        };
        let mut message = String::new();
        ctx.field_format()
            .format_fields(Writer::new(&mut message), event)?;
        writeln!(writer, "{level}: {}", crate::error::sanitize(&message))
    }
}

/// Only secretsubst's own events are shown: libraries' debug logs may carry tokens or payloads.
pub fn init(verbose: bool) {
    let level = if verbose { Level::DEBUG } else { Level::WARN };
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .event_format(Plain)
        .finish()
        .with(Targets::new().with_target(env!("CARGO_CRATE_NAME"), level));
    // Only fails if a subscriber is already set, which leaves logging working.
    let _ = subscriber.try_init();
}
