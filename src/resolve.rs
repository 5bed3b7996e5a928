//! Fetches each unique secret once, concurrently with a bound, retrying transient failures.
//! The only module that calls a backend.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt as _;

use crate::backend::{BackendError, ErrorKind, Selected};
use crate::deadline::Deadline;
use crate::secret::{SecretData, SecretRef};
use crate::wait;

/// No retry waits longer, whatever the server asks for or the backoff reaches.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(30);

/// How hard to try.
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    pub max_concurrency: usize,
    pub max_retries: u32,
    /// First retry delay; doubled for each further retry, plus up to 50 % jitter.
    pub backoff: Duration,
    /// A retry that could not start before it is not made.
    pub deadline: Deadline,
}

/// The outcome for every requested secret. Errors are full messages (`vault: …`).
pub struct Resolved {
    pub secrets: HashMap<SecretRef, Result<Arc<SecretData>, String>>,
    /// Backend calls made, retries included.
    pub requests: usize,
}

/// Logs in once, then fetches every secret of `refs`.
pub async fn resolve(
    selected: &Selected,
    refs: BTreeSet<SecretRef>,
    policy: Policy,
) -> anyhow::Result<Resolved> {
    if refs.is_empty() {
        return Ok(Resolved {
            secrets: HashMap::new(),
            requests: 0,
        });
    }
    // Logins are not counted: backends without one must not appear to make a request.
    retry(selected, "login", policy, &mut 0, || {
        selected.backend.login()
    })
    .await
    .map_err(|e| anyhow::anyhow!("{}: login failed: {}", selected.name, hinted(&e)))?;
    let requests = AtomicUsize::new(0);
    let limit = selected.backend.batch_limit().max(1);
    let refs: Vec<SecretRef> = refs.into_iter().collect();
    let secrets = futures::stream::iter(refs.chunks(limit))
        .map(|chunk| {
            let requests = &requests;
            async move {
                let results = if chunk.len() == 1 {
                    vec![fetch(selected, &chunk[0], policy, requests).await]
                } else {
                    fetch_batch(selected, chunk, policy, requests).await
                };
                chunk
                    .iter()
                    .cloned()
                    .zip(results)
                    .map(|(secret, result)| {
                        (
                            secret,
                            result
                                .map(Arc::new)
                                .map_err(|e| describe(selected.name, &e)),
                        )
                    })
                    .collect::<Vec<_>>()
            }
        })
        .buffer_unordered(policy.max_concurrency.max(1))
        .flat_map(futures::stream::iter)
        .collect()
        .await;
    Ok(Resolved {
        secrets,
        requests: requests.into_inner(),
    })
}

/// One batch request; secrets that failed transiently are retried one by one.
async fn fetch_batch(
    selected: &Selected,
    chunk: &[SecretRef],
    policy: Policy,
    requests: &AtomicUsize,
) -> Vec<Result<SecretData, BackendError>> {
    let batch = {
        let _waiting = wait::on(format!(
            "{}: batch read of {} secrets ({}, …)",
            selected.name,
            chunk.len(),
            chunk[0]
        ));
        selected.backend.get_batch(chunk).await
    };
    requests.fetch_add(batch.requests, Ordering::Relaxed);
    let mut results = Vec::with_capacity(chunk.len());
    for (secret, result) in chunk.iter().zip(batch.results) {
        results.push(match result {
            Err(e) if e.kind == ErrorKind::Transient && policy.max_retries > 0 => {
                tracing::debug!("{}: {secret}: {e}; retrying on its own", selected.name);
                fetch(selected, secret, policy, requests).await
            }
            other => other,
        });
    }
    results
}

async fn fetch(
    selected: &Selected,
    secret: &SecretRef,
    policy: Policy,
    requests: &AtomicUsize,
) -> Result<SecretData, BackendError> {
    let what = format!("read of {secret}");
    let mut made = 0;
    let result = retry(selected, &what, policy, &mut made, || {
        selected.backend.get(secret)
    })
    .await;
    requests.fetch_add(made, Ordering::Relaxed);
    result
}

/// Runs `attempt` until it succeeds, fails for good, or has been retried `max_retries` times;
/// waits what the server asked for (`Retry-After`) or an exponential backoff, but never past the
/// deadline. `made` counts the attempts.
async fn retry<T, F, Fut>(
    selected: &Selected,
    what: &str,
    policy: Policy,
    made: &mut usize,
    attempt: F,
) -> Result<T, BackendError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, BackendError>>,
{
    let mut retries = 0;
    loop {
        *made += 1;
        let result = {
            let _waiting = wait::on(format!("{}: {what}", selected.name));
            attempt().await
        };
        match result {
            Err(mut e) if e.kind == ErrorKind::Transient && retries < policy.max_retries => {
                let delay = e
                    .retry_after
                    .unwrap_or_else(|| backoff(policy.backoff, retries))
                    .min(MAX_RETRY_DELAY);
                if delay >= policy.deadline.remaining() {
                    e.message.push_str(&format!(
                        " (not retried: the retry in {delay:?} would pass the run deadline)"
                    ));
                    e.retry_after = None;
                    return Err(e);
                }
                tracing::debug!("{}: {what}: {e}; retrying in {delay:?}", selected.name);
                let _waiting = wait::on(format!(
                    "{}: the retry of {what} in {delay:?} after: {e}",
                    selected.name
                ));
                tokio::time::sleep(delay).await;
                retries += 1;
            }
            Err(mut e) if e.kind == ErrorKind::Transient && retries > 0 => {
                e.message.push_str(" (gave up after retrying)");
                return Err(e);
            }
            result => return result,
        }
    }
}

fn backoff(base: Duration, attempt: u32) -> Duration {
    let exponential = base.saturating_mul(1 << attempt.min(16));
    exponential.mul_f64(1.0 + fastrand::f64() / 2.0)
}

fn describe(backend: &str, e: &BackendError) -> String {
    format!("{backend}: {}", hinted(e))
}

fn hinted(e: &BackendError) -> String {
    match e.kind {
        ErrorKind::PermissionDenied => {
            format!("{e} (check the policy of the identity secretsubst logs in as)")
        }
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;
    use tokio::sync::Barrier;

    use super::*;
    use crate::backend::Backend;

    fn secret(path: &str) -> SecretRef {
        SecretRef {
            path: path.into(),
            version: None,
            kv_version: None,
            namespace: None,
        }
    }

    fn policy(max_concurrency: usize) -> Policy {
        Policy {
            max_concurrency,
            max_retries: 2,
            backoff: Duration::from_millis(1),
            deadline: Deadline::from_timeout(crate::deadline::DEFAULT_TIMEOUT, false),
        }
    }

    fn selected(backend: impl Backend + 'static) -> Selected {
        Selected {
            name: "test",
            backend: Arc::new(backend),
        }
    }

    /// Answers only once `parties` calls are in flight together, so a sequential resolver
    /// would wait forever.
    struct Rendezvous {
        barrier: Barrier,
    }

    #[async_trait]
    impl Backend for Rendezvous {
        async fn get(&self, _: &SecretRef) -> Result<SecretData, BackendError> {
            self.barrier.wait().await;
            Ok(SecretData::new())
        }
    }

    #[tokio::test]
    async fn distinct_secrets_are_fetched_concurrently() {
        let backend = selected(Rendezvous {
            barrier: Barrier::new(4),
        });
        let refs = (0..4).map(|i| secret(&format!("p{i}"))).collect();
        let resolved =
            tokio::time::timeout(Duration::from_secs(10), resolve(&backend, refs, policy(4)))
                .await
                .expect("all four fetches must be in flight at once")
                .unwrap();
        assert_eq!(resolved.requests, 4);
        assert!(resolved.secrets.values().all(Result::is_ok));
    }

    /// Fails with the given kinds in turn, then succeeds.
    struct Flaky {
        failures: Mutex<Vec<ErrorKind>>,
    }

    #[async_trait]
    impl Backend for Flaky {
        async fn get(&self, _: &SecretRef) -> Result<SecretData, BackendError> {
            match self.failures.lock().unwrap().pop() {
                Some(kind) => Err(BackendError::new(kind, "boom")),
                None => Ok(SecretData::new()),
            }
        }
    }

    #[tokio::test]
    async fn transient_errors_are_retried() {
        let backend = selected(Flaky {
            failures: Mutex::new(vec![ErrorKind::Transient, ErrorKind::Transient]),
        });
        let resolved = resolve(&backend, [secret("a")].into(), policy(1))
            .await
            .unwrap();
        assert_eq!(resolved.requests, 3);
        assert!(resolved.secrets[&secret("a")].is_ok());
    }

    #[tokio::test]
    async fn retries_stop_at_the_limit() {
        let backend = selected(Flaky {
            failures: Mutex::new(vec![ErrorKind::Transient; 3]),
        });
        let resolved = resolve(&backend, [secret("a")].into(), policy(1))
            .await
            .unwrap();
        assert_eq!(resolved.requests, 3);
        let err = resolved.secrets[&secret("a")].as_ref().unwrap_err();
        assert_eq!(err, "test: boom (gave up after retrying)");
    }

    #[tokio::test]
    async fn not_found_and_permission_denied_are_not_retried() {
        for kind in [ErrorKind::NotFound, ErrorKind::PermissionDenied] {
            let backend = selected(Flaky {
                failures: Mutex::new(vec![kind]),
            });
            let resolved = resolve(&backend, [secret("a")].into(), policy(1))
                .await
                .unwrap();
            assert_eq!(resolved.requests, 1);
        }
    }
}
