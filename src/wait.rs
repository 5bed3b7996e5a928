//! What the run is waiting for right now (the renderer, a Kubernetes API call, a login, reads),
//! so that a deadline or a signal can say what it interrupted.
//!
//! Every blocking wait registers itself for as long as it lasts; the registry is process-wide
//! because a signal can arrive on any thread.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

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
    lock().push((id, what.into()));
    Waiting(id)
}

impl Drop for Waiting {
    fn drop(&mut self) {
        lock().retain(|(id, _)| *id != self.0);
    }
}

/// The current waits, oldest first: `a`, `a and b`, `a, b, c and 4 more`; `None` when idle.
pub fn describe() -> Option<String> {
    let waiting = lock();
    let mut names: Vec<&str> = Vec::new();
    for (_, what) in waiting.iter() {
        if !names.contains(&what.as_str()) {
            names.push(what);
        }
    }
    Some(match names.as_slice() {
        [] => return None,
        [one] => (*one).to_owned(),
        _ if names.len() > NAMED => format!(
            "{} and {} more",
            names[..NAMED].join(", "),
            names.len() - NAMED
        ),
        [first @ .., last] => format!("{} and {last}", first.join(", ")),
    })
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
        drop((a, b, c));
        let many: Vec<_> = (0..5).map(|i| on(format!("test: {i}"))).collect();
        assert!(describe().unwrap().contains("more"));
        drop(many);
    }
}
