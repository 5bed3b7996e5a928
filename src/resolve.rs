//! Resolution: builds the backends of the profiles in use, fetches each unique secret once,
//! concurrently with each profile's bound, retrying transient failures, within the run
//! deadline. The only module that sees both placeholders and backends.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt as _;

use crate::backend::{self, Backend, BackendError, Context, ErrorKind, Failure, Origin};
use crate::config::{self, Config};
use crate::deadline::Deadline;
use crate::error::{Cause, Diagnostic};
use crate::secret::{SecretData, SecretRef, Wanted};
use crate::substitute::{Fetched, Unfetched};
use crate::wait;

/// No retry waits longer, whatever the server asks for or the backoff reaches.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(30);
/// First retry delay; doubled for each further retry, plus up to 50 % jitter.
const BACKOFF: Duration = Duration::from_millis(250);

/// How hard to try one profile's backend.
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    pub max_concurrency: usize,
    pub max_retries: u32,
    pub backoff: Duration,
    /// A retry that could not start before it is not made.
    pub deadline: Deadline,
}

/// The outcome for every requested secret.
#[derive(Default)]
pub struct Resolved {
    pub secrets: Fetched,
    /// Backend calls made, retries included.
    pub requests: usize,
    /// Per profile used: its origin, unique secrets and requests.
    pub profiles: Vec<(Origin, usize, usize)>,
    /// Profiles that could not be built or logged in, one error each.
    pub errors: Vec<Diagnostic>,
}

/// Fetches every secret of `refs`, each through its profile's backend. The backends of the
/// profiles in use are built first (reading their files, outside the runtime), then logged in
/// and read concurrently, each with its own bounds, within the run deadline.
pub fn resolve(config: &Config, wanted: &Wanted) -> anyhow::Result<Resolved> {
    let mut resolved = Resolved::default();
    if wanted.is_empty() {
        return Ok(resolved);
    }
    let mut by_profile: BTreeMap<&str, Vec<SecretRef>> = BTreeMap::new();
    for secret in wanted.keys() {
        by_profile
            .entry(secret.profile.as_str())
            .or_default()
            .push(secret.clone());
    }
    let mut built = Vec::new();
    for (name, refs) in by_profile {
        let origin = origin(config, name);
        match build(config, name) {
            Ok((backend, policy)) => built.push((Profiled { origin, backend }, refs, policy)),
            Err(e) => resolved.fail(refs, set_up_error(&origin, &format!("{e:#}"))),
        }
    }
    let fallback = match built.as_slice() {
        [(one, _, _)] => format!("the {} backend", one.origin),
        _ => "the backends".to_owned(),
    };
    let network = built.iter().any(|(p, _, _)| p.backend.uses_network());
    let fetched = config.deadline.block_on(
        &fallback,
        network,
        futures::future::join_all(built.iter().map(|(profiled, refs, policy)| async move {
            (
                fetch_all(profiled, refs.clone(), wanted, *policy).await,
                refs,
            )
        })),
    )?;
    for ((profiled, _, _), (result, refs)) in built.iter().zip(fetched) {
        match result {
            Ok(fetched) => {
                resolved.requests += fetched.requests;
                let counts = (fetched.secrets.len(), fetched.requests);
                resolved
                    .profiles
                    .push((profiled.origin.clone(), counts.0, counts.1));
                resolved.secrets.extend(fetched.secrets);
            }
            Err(failure) => {
                let cause = Cause::Backend {
                    failure,
                    note: None,
                };
                resolved.fail(refs.clone(), Diagnostic::new(cause));
            }
        }
    }
    Ok(resolved)
}

impl Resolved {
    /// Records a profile that could not be used: its error once, its secrets as unfetched.
    fn fail(&mut self, refs: Vec<SecretRef>, diagnostic: Diagnostic) {
        let reason = diagnostic.to_string();
        self.errors.push(diagnostic);
        self.secrets.extend(
            refs.into_iter()
                .map(|r| (r, Err(Unfetched::ProfileFailed(reason.clone())))),
        );
    }
}

fn origin(config: &Config, name: &str) -> Origin {
    let profile = config.profiles.get(name);
    Origin {
        backend: profile
            .and_then(|p| backend::find(&p.backend_type))
            .map_or("", |t| t.name),
        profile: name.to_owned(),
        named: config.profiles.configured(),
    }
}

/// A profile that cannot be set up. Without profiles the message stays what it always was; with
/// them it names the profile.
fn set_up_error(origin: &Origin, message: &str) -> Diagnostic {
    let text = match (origin.named, origin.backend.is_empty()) {
        (false, _) => message.to_owned(),
        (true, false) => format!("{origin}: {message}"),
        (true, true) => format!("backend profile {}: {message}", origin.profile),
    };
    Diagnostic::new(Cause::Other(text))
}

/// The secrets of one profile and the requests they took.
struct ProfileFetch {
    secrets: Fetched,
    requests: usize,
}

/// The backend of profile `name` (a configured one), from its own settings.
pub fn backend(config: &Config, name: &str) -> anyhow::Result<Arc<dyn Backend>> {
    let profile = config
        .profiles
        .get(name)
        .expect("only configured profiles are built");
    let kind = backend::find(&profile.backend_type)
        .ok_or_else(|| backend::unknown(&profile.backend_type))?;
    let context = Context {
        profile: &profile.name,
        cache_credentials: config.cache_credentials,
    };
    let backend = kind.build(&profile.settings, &context)?;
    tracing::debug!("{}: set up", origin(config, &profile.name));
    Ok(backend)
}

/// The profile's backend and policy, from its own settings.
fn build(config: &Config, name: &str) -> anyhow::Result<(Arc<dyn Backend>, Policy)> {
    let settings = &config.profiles.get(name).expect("configured").settings;
    let (max_concurrency, max_retries) = config::limits(settings)?;
    let backend = backend(config, name)?;
    Ok((
        backend,
        Policy {
            max_concurrency,
            max_retries,
            backoff: BACKOFF,
            deadline: config.deadline,
        },
    ))
}

/// A built backend and the name its errors go by.
struct Profiled {
    origin: Origin,
    backend: Arc<dyn Backend>,
}

/// Logs in once, then fetches every secret of `refs` in the groups the backend chooses.
async fn fetch_all(
    profiled: &Profiled,
    refs: Vec<SecretRef>,
    wanted: &Wanted,
    policy: Policy,
) -> Result<ProfileFetch, Failure> {
    // Logins are not counted: backends without one must not appear to make a request.
    retry(profiled, "login", policy, &mut 0, || {
        profiled.backend.login()
    })
    .await
    .map_err(|e| {
        let mut failure = Failure::new(&profiled.origin, None, &e);
        failure.message = format!("login failed: {}", failure.message);
        failure
    })?;
    let requests = AtomicUsize::new(0);
    let groups = profiled.backend.batches(&refs).await;
    let secrets = futures::stream::iter(groups)
        .map(|group| {
            let requests = &requests;
            let chunk: Vec<&SecretRef> = group.iter().map(|&i| &refs[i]).collect();
            async move {
                let results = if chunk.len() == 1 {
                    vec![fetch(profiled, chunk[0], wanted, policy, requests).await]
                } else {
                    fetch_batch(profiled, &chunk, wanted, policy, requests).await
                };
                chunk
                    .into_iter()
                    .zip(results)
                    .map(|(secret, result)| {
                        let result = result.map(Arc::new).map_err(|e| {
                            Unfetched::Failed(Failure::new(
                                &profiled.origin,
                                Some(secret.to_string()),
                                &e,
                            ))
                        });
                        (secret.clone(), result)
                    })
                    .collect::<Vec<_>>()
            }
        })
        .buffer_unordered(policy.max_concurrency.max(1))
        .flat_map(futures::stream::iter)
        .collect::<HashMap<_, _>>()
        .await;
    Ok(ProfileFetch {
        secrets,
        requests: requests.into_inner(),
    })
}

/// One batch request; secrets that failed transiently are retried one by one, concurrently.
async fn fetch_batch(
    profiled: &Profiled,
    chunk: &[&SecretRef],
    wanted: &Wanted,
    policy: Policy,
    requests: &AtomicUsize,
) -> Vec<Result<SecretData, BackendError>> {
    let batch = {
        let _waiting = wait::on(format!(
            "{}: batch read of {} secrets ({}, …)",
            profiled.origin,
            chunk.len(),
            chunk[0]
        ));
        let chunk: Vec<backend::Wanted<'_>> = chunk.iter().map(|s| (*s, &wanted[*s])).collect();
        profiled.backend.get_batch(&chunk).await
    };
    requests.fetch_add(batch.requests, Ordering::Relaxed);
    let retried = chunk
        .iter()
        .zip(batch.results)
        .map(|(secret, result)| async move {
            match result {
                Err(e) if e.kind == ErrorKind::Transient && policy.max_retries > 0 => {
                    tracing::debug!("{}: {secret}: {e}; retrying on its own", profiled.origin);
                    fetch(profiled, secret, wanted, policy, requests).await
                }
                other => other,
            }
        });
    futures::future::join_all(retried).await
}

async fn fetch(
    profiled: &Profiled,
    secret: &SecretRef,
    wanted: &Wanted,
    policy: Policy,
    requests: &AtomicUsize,
) -> Result<SecretData, BackendError> {
    let what = format!("read of {secret}");
    let keys = &wanted[secret];
    let mut made = 0;
    let result = retry(profiled, &what, policy, &mut made, || {
        profiled.backend.get(secret, keys)
    })
    .await;
    requests.fetch_add(made, Ordering::Relaxed);
    result
}
/// Runs `attempt` until it succeeds, fails for good, or has been retried `max_retries` times;
/// waits what the server asked for (`Retry-After`) or an exponential backoff, but never past the
/// deadline. `made` counts the attempts.
async fn retry<T, F, Fut>(
    profiled: &Profiled,
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
            let _waiting = wait::on(format!("{}: {what}", profiled.origin));
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
                tracing::debug!("{}: {what}: {e}; retrying in {delay:?}", profiled.origin);
                let _waiting = wait::on(format!(
                    "{}: the retry of {what} in {delay:?} after: {e}",
                    profiled.origin
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

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;
    use tokio::sync::Barrier;

    use super::*;

    fn secret(path: &str) -> SecretRef {
        SecretRef::new(path, None)
    }

    /// Each of `refs` with one key.
    fn wanted(refs: &[SecretRef]) -> Wanted {
        refs.iter()
            .map(|r| (r.clone(), ["k".to_owned()].into()))
            .collect()
    }

    /// Fetches the one secret `a`, retrying up to twice.
    async fn fetch_a(backend: &Profiled) -> ProfileFetch {
        fetch_all(
            backend,
            vec![secret("a")],
            &wanted(&[secret("a")]),
            policy(1),
        )
        .await
        .unwrap()
    }

    fn policy(max_concurrency: usize) -> Policy {
        Policy {
            max_concurrency,
            max_retries: 2,
            backoff: Duration::from_millis(1),
            deadline: Deadline::from_timeout(crate::deadline::DEFAULT_TIMEOUT, false),
        }
    }

    fn selected(backend: impl Backend + 'static) -> Profiled {
        Profiled {
            origin: Origin {
                backend: "test",
                profile: "default".into(),
                named: false,
            },
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
        async fn get(
            &self,
            _: &SecretRef,
            _: &std::collections::BTreeSet<String>,
        ) -> Result<SecretData, BackendError> {
            self.barrier.wait().await;
            Ok(SecretData::new())
        }
    }

    #[tokio::test]
    async fn distinct_secrets_are_fetched_concurrently() {
        let backend = selected(Rendezvous {
            barrier: Barrier::new(4),
        });
        let refs: Vec<SecretRef> = (0..4).map(|i| secret(&format!("p{i}"))).collect();
        let resolved = tokio::time::timeout(
            Duration::from_secs(10),
            fetch_all(&backend, refs.clone(), &wanted(&refs), policy(4)),
        )
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
        async fn get(
            &self,
            _: &SecretRef,
            _: &std::collections::BTreeSet<String>,
        ) -> Result<SecretData, BackendError> {
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
        let resolved = fetch_a(&backend).await;
        assert_eq!(resolved.requests, 3);
        assert!(resolved.secrets[&secret("a")].is_ok());
    }

    #[tokio::test]
    async fn retries_stop_at_the_limit() {
        let backend = selected(Flaky {
            failures: Mutex::new(vec![ErrorKind::Transient; 3]),
        });
        let resolved = fetch_a(&backend).await;
        assert_eq!(resolved.requests, 3);
        let Err(Unfetched::Failed(err)) = &resolved.secrets[&secret("a")] else {
            panic!("the read must fail");
        };
        assert_eq!(err.to_string(), "test: boom (gave up after retrying)");
    }

    #[tokio::test]
    async fn not_found_and_permission_denied_are_not_retried() {
        for kind in [ErrorKind::NotFound, ErrorKind::PermissionDenied] {
            let backend = selected(Flaky {
                failures: Mutex::new(vec![kind]),
            });
            let resolved = fetch_a(&backend).await;
            assert_eq!(resolved.requests, 1);
        }
    }
}
