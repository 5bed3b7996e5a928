//! Assertions on a finished run of the binary.

use std::process::Output;

pub fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("stdout is UTF-8")
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).expect("stderr is UTF-8")
}

/// Asserts success with `want` on stdout.
pub fn assert_output(out: &Output, want: &str) {
    assert!(out.status.success(), "failed: {}", stderr(out));
    assert_eq!(stdout(out), want);
}

/// Asserts failure (exit 1) with nothing on stdout and none of `secrets` on stderr; returns stderr.
pub fn assert_failure(out: &Output, secrets: &[&str]) -> String {
    assert_eq!(out.status.code(), Some(1), "stderr: {}", stderr(out));
    assert_eq!(stdout(out), "");
    let err = stderr(out);
    for secret in secrets {
        assert!(!err.contains(secret), "stderr leaks {secret:?}: {err}");
    }
    err
}

/// The `error: ` lines of a failed run (verbose runs also print debug lines), after
/// [`assert_failure`].
pub fn error_lines(out: &Output, secrets: &[&str]) -> Vec<String> {
    assert_failure(out, secrets)
        .lines()
        .filter(|l| l.starts_with("error: "))
        .map(str::to_owned)
        .collect()
}
