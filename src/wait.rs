//! What the run is waiting for right now (the renderer, a Kubernetes API call, a login, reads),
//! so that a deadline or a signal can say what it interrupted.
//!
//! Every blocking wait registers itself for as long as it lasts; the registry is process-wide
//! because a signal can arrive on any thread.

use std::fmt::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, TryLockError};

/// The waits, oldest first, each named as it may be printed (already sanitized).
static WAITING: Mutex<Vec<(u64, String)>> = Mutex::new(Vec::new());
static NEXT: AtomicU64 = AtomicU64::new(0);

/// How many waits a description names before it counts the rest.
const NAMED: usize = 3;

/// A registered wait; dropping it ends the wait.
#[must_use = "the wait ends when this is dropped"]
pub struct Waiting(u64);

/// Registers a wait for `what` (no secret values: it may be printed).
pub fn on(what: impl Into<String>) -> Waiting {
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    let what = crate::error::sanitize(&what.into());
    lock().push((id, what));
    Waiting(id)
}

impl Drop for Waiting {
    fn drop(&mut self) {
        lock().retain(|(id, _)| *id != self.0);
    }
}

/// The current waits, oldest first: `a`, `a and b`, `a, b, c and 4 more`; `None` when idle.
pub fn describe() -> Option<String> {
    let mut text = String::new();
    write_description(&lock(), &mut text).ok()?;
    (!text.is_empty()).then_some(text)
}

/// [`describe`] for a signal handler, into `out`; false when idle, or when the registry stays
/// locked (the interrupted thread may hold it). It neither allocates nor blocks.
pub fn describe_in_signal_handler(out: &mut impl Write) -> bool {
    for _ in 0..1000 {
        let waiting = match WAITING.try_lock() {
            Ok(waiting) => waiting,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => {
                // SAFETY: sched_yield(2) only gives up the processor.
                unsafe { libc::sched_yield() };
                continue;
            }
        };
        // A cut description is still worth printing.
        let _ = write_description(&waiting, out);
        return !waiting.is_empty();
    }
    false
}

/// How many of the oldest waits a description tells apart; any later ones are counted as more.
const SCANNED: usize = 1024;

/// Names the distinct waits in the order they began, without allocating (a signal handler
/// calls it), so finding each name's first occurrence takes a scan of the earlier ones.
fn write_description(waiting: &[(u64, String)], out: &mut impl Write) -> fmt::Result {
    let (waiting, unscanned) = waiting.split_at(waiting.len().min(SCANNED));
    let first = |i: &usize| !waiting[..*i].iter().any(|(_, w)| *w == waiting[*i].1);
    let distinct = (0..waiting.len()).filter(first).count() + unscanned.len();
    let mut named = 0;
    for i in (0..waiting.len()).filter(first).take(NAMED) {
        let separator = match named {
            0 => "",
            n if n + 1 == distinct => " and ",
            _ => ", ",
        };
        write!(out, "{separator}{}", waiting[i].1)?;
        named += 1;
    }
    if distinct > named {
        write!(out, " and {} more", distinct - named)?;
    }
    Ok(())
}

/// A poisoned lock still holds a usable list: waits only add and remove strings.
fn lock() -> std::sync::MutexGuard<'static, Vec<(u64, String)>> {
    WAITING.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One test, because the registry is process-wide and tests run in parallel threads.
    #[test]
    fn waits_are_described_while_they_last() {
        let a = on("test: a");
        let b = on("test: b");
        let c = on("test: b");
        let text = describe().unwrap();
        assert!(
            text.contains("test: a") && text.contains("test: b"),
            "{text}"
        );
        assert_eq!(text.matches("test: b").count(), 1, "{text}");
        let mut line = String::new();
        assert!(describe_in_signal_handler(&mut line));
        assert!(
            line.contains("test: a") && line.contains("test: b"),
            "{line}"
        );
        drop((a, b, c));
        let many: Vec<_> = (0..5).map(|i| on(format!("test: {i}"))).collect();
        assert!(describe().unwrap().contains("more"));
        drop(many);
    }

    fn description(names: &[&str]) -> String {
        let waiting: Vec<(u64, String)> = (0..).zip(names.iter().map(|n| n.to_string())).collect();
        let mut text = String::new();
        write_description(&waiting, &mut text).unwrap();
        text
    }

    #[test]
    fn a_description_names_three_distinct_waits_oldest_first_and_counts_the_rest() {
        assert_eq!(description(&[]), "");
        assert_eq!(description(&["a", "a"]), "a");
        assert_eq!(description(&["a", "b", "a"]), "a and b");
        assert_eq!(description(&["c", "a", "b"]), "c, a and b");
        assert_eq!(
            description(&["a", "b", "c", "b", "d", "e"]),
            "a, b, c and 2 more"
        );
    }

    #[test]
    fn waits_past_the_scanned_ones_are_counted_not_told_apart() {
        let mut names = vec!["a"; SCANNED];
        names.extend(["b", "b"]);
        assert_eq!(description(&names), "a and 2 more");
    }

    #[test]
    fn a_wait_is_named_as_it_may_be_printed() {
        let _waiting = on("test: `sh -c 'a\nb'` at https://user:pw@example.test/");
        let text = describe().unwrap();
        assert!(
            text.contains("test: `sh -c 'a\\nb'` at https://[redacted]@example.test/"),
            "{text}"
        );
    }
}
