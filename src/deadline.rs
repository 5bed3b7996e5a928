//! The run deadline: every wait (the `-s` Secret, the renderer, logins, reads) ends shortly
//! before Argo CD would kill the plugin, with an error that says what was still pending.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::wait;

/// Argo CD's own default for `ARGOCD_EXEC_TIMEOUT`: a run without the setting still ends.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(90);

/// A point shortly before Argo CD's exec timeout.
#[derive(Clone, Copy, Debug)]
pub struct Deadline {
    at: Instant,
    timeout: Duration,
    /// Whether `ARGOCD_EXEC_TIMEOUT` set the timeout (else it is Argo CD's default).
    configured: bool,
}

impl Deadline {
    /// Gives up at 90 % of `timeout` (at least one second before it), counting from now.
    pub fn from_timeout(timeout: Duration, configured: bool) -> Deadline {
        let margin = (timeout / 10).max(Duration::from_secs(1)).min(timeout / 2);
        let now = Instant::now();
        Deadline {
            at: now.checked_add(timeout - margin).unwrap_or(now),
            timeout,
            configured,
        }
    }

    pub fn remaining(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    /// The error for running out of time while waiting for `what`.
    pub fn exceeded(&self, what: &str) -> String {
        let setting = if self.configured {
            format!("ARGOCD_EXEC_TIMEOUT ({:?})", self.timeout)
        } else {
            format!(
                "the run deadline ({:?}, Argo CD's default ARGOCD_EXEC_TIMEOUT)",
                self.timeout
            )
        };
        format!("gave up waiting for {what}: {setting} is about to end the plugin")
    }

    /// Runs `future` to completion on a new single-threaded runtime, or gives up at the deadline
    /// naming what was still pending (`fallback` when nothing registered a wait). Without
    /// `network` the runtime has no I/O driver (its epoll, event fd and signal pipe), which a run
    /// reading only local files would set up for nothing.
    pub fn block_on<F: Future>(
        &self,
        fallback: &str,
        network: bool,
        future: F,
    ) -> anyhow::Result<F::Output> {
        let mut builder = tokio::runtime::Builder::new_current_thread();
        if network {
            builder.enable_io();
        }
        let runtime = builder.enable_time().build()?;
        let remaining = self.remaining();
        // The timer is created inside the runtime (tokio's timers need its clock), and the waits
        // are read while the future still holds them.
        runtime.block_on(async {
            let future = std::pin::pin!(future);
            tokio::select! {
                output = future => Ok(output),
                () = tokio::time::sleep(remaining) => {
                    let what = wait::describe().unwrap_or_else(|| fallback.to_owned());
                    Err(anyhow::anyhow!(self.exceeded(&what)))
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_future_past_the_deadline_names_what_it_waited_for() {
        let deadline = Deadline::from_timeout(Duration::from_millis(200), true);
        let err = deadline
            .block_on("the test", false, async {
                let _waiting = wait::on("the test's sleep");
                tokio::time::sleep(Duration::from_secs(30)).await;
            })
            .unwrap_err();
        // Other tests may register waits of their own at the same time.
        let text = err.to_string();
        assert!(text.starts_with("gave up waiting for "), "{text}");
        assert!(text.contains("the test's sleep"), "{text}");
        assert!(
            text.ends_with(": ARGOCD_EXEC_TIMEOUT (200ms) is about to end the plugin"),
            "{text}"
        );
    }

    #[test]
    fn a_future_within_the_deadline_gives_its_output() {
        let deadline = Deadline::from_timeout(DEFAULT_TIMEOUT, false);
        assert_eq!(deadline.block_on("x", false, async { 7 }).unwrap(), 7);
        assert!(
            deadline
                .exceeded("x")
                .contains("Argo CD's default ARGOCD_EXEC_TIMEOUT")
        );
    }
}
