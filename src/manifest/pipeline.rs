//! Pipeline mode: runs the renderer (`helm template …`, `kustomize build .`) and takes its stdout
//! as the input, so a failing render can never pass for an empty, successful one.

use std::fmt;
use std::os::unix::process::{CommandExt as _, ExitStatusExt as _};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context as _, bail};

use crate::deadline::Deadline;
use crate::manifest::input::{self, Source};
use crate::{signals, wait};

/// The renderer failed; secretsubst exits with its status.
#[derive(Debug)]
pub struct ChildFailed {
    pub command: String,
    /// The child's exit code, or 128 + the signal that killed it, as shells report it.
    pub code: u8,
}

impl fmt::Display for ChildFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` failed with exit status {}",
            self.command, self.code
        )
    }
}

impl std::error::Error for ChildFailed {}

/// Runs `command` with stdin closed and stderr passed through; its stdout is the input.
///
/// The renderer runs in a process group of its own, so that the deadline, a signal, or its own
/// exit can stop everything it started: a leftover child must not keep its output open.
pub fn run(command: &[String], deadline: &Deadline) -> anyhow::Result<Source> {
    let (program, args) = command.split_first().context("no command after --")?;
    let shown = command.join(" ");
    let _waiting = wait::on(format!("`{shown}`"));
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .process_group(0)
        .spawn()
        .with_context(|| format!("cannot run {program}"))?;
    let group = i32::try_from(child.id()).context("process id out of range")?;
    signals::set_renderer(group);
    let mut stdout = child.stdout.take().context("child stdout is piped")?;
    let (sender, output) = mpsc::channel();
    std::thread::spawn(move || {
        // The receiver is gone only when the run has given up on this output.
        let _ = sender.send(input::read_limited(&mut stdout));
    });
    let mut pause = Duration::from_millis(1);
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if deadline.remaining().is_zero() {
            signals::kill_group(group);
            child.wait()?;
            bail!(deadline.exceeded(&format!("`{shown}`")));
        }
        std::thread::sleep(pause.min(deadline.remaining()));
        pause = (pause * 2).min(Duration::from_millis(20));
    };
    // Whatever the renderer left running has no business writing more of its output.
    signals::kill_group(group);
    let bytes = match output.recv_timeout(deadline.remaining()) {
        Ok(read) => read.with_context(|| format!("cannot read the output of `{shown}`"))?,
        Err(_) => bail!(deadline.exceeded(&format!(
            "the output of `{shown}` to end (a process it started keeps it open)"
        ))),
    };
    if !status.success() {
        return Err(ChildFailed {
            command: shown,
            code: exit_code(status),
        }
        .into());
    }
    let name = format!("<{}>", program.rsplit('/').next().unwrap_or(program));
    let text = String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!(
            "{name}: not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        )
    })?;
    Ok(Source { name, text })
}

fn exit_code(status: ExitStatus) -> u8 {
    match (status.code(), status.signal()) {
        (Some(code), _) => u8::try_from(code).unwrap_or(1).max(1),
        (None, Some(signal)) => u8::try_from(128 + signal).unwrap_or(255),
        (None, None) => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deadline::DEFAULT_TIMEOUT;

    fn unbounded() -> Deadline {
        Deadline::from_timeout(DEFAULT_TIMEOUT, false)
    }

    fn sh(script: &str) -> Vec<String> {
        vec!["sh".into(), "-c".into(), script.into()]
    }

    #[test]
    fn the_childs_stdout_is_the_input() {
        let source = run(&sh("printf 'kind: A\\n'"), &unbounded()).unwrap();
        assert_eq!(
            (source.name.as_str(), source.text.as_str()),
            ("<sh>", "kind: A\n")
        );
    }

    #[test]
    fn a_failing_child_gives_its_exit_status() {
        let err = run(&sh("echo partial; exit 3"), &unbounded()).unwrap_err();
        let failed = err.downcast_ref::<ChildFailed>().unwrap();
        assert_eq!(failed.code, 3);
        assert_eq!(
            err.to_string(),
            "`sh -c echo partial; exit 3` failed with exit status 3"
        );
    }

    #[test]
    fn a_killed_child_reports_the_signal_like_a_shell() {
        let err = run(&sh("kill -TERM $$"), &unbounded()).unwrap_err();
        assert_eq!(err.downcast_ref::<ChildFailed>().unwrap().code, 128 + 15);
    }

    #[test]
    fn a_missing_program_is_named() {
        let err = run(&["no-such-renderer-xyz".to_owned()], &unbounded()).unwrap_err();
        assert_eq!(err.to_string(), "cannot run no-such-renderer-xyz");
    }

    #[test]
    fn a_slow_child_is_stopped_before_the_deadline() {
        let deadline = Deadline::from_timeout(Duration::from_millis(400), true);
        let err = run(&sh("sleep 30"), &deadline).unwrap_err();
        assert_eq!(
            err.to_string(),
            "gave up waiting for `sh -c sleep 30`: ARGOCD_EXEC_TIMEOUT (400ms) is about to end the plugin"
        );
    }

    #[test]
    fn a_child_left_running_by_the_renderer_cannot_hold_the_output_open() {
        let started = std::time::Instant::now();
        let source = run(&sh("sleep 30 & printf 'kind: A\\n'"), &unbounded()).unwrap();
        assert_eq!(source.text, "kind: A\n");
        assert!(started.elapsed() < Duration::from_secs(20));
    }

    #[test]
    fn the_deadline_kills_the_renderers_children_too() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("alive");
        let script = format!("(sleep 1; touch {}) & sleep 30", marker.display());
        let deadline = Deadline::from_timeout(Duration::from_millis(300), true);
        run(&sh(&script), &deadline).unwrap_err();
        std::thread::sleep(Duration::from_millis(1500));
        assert!(
            !marker.exists(),
            "the renderer's child outlived the deadline"
        );
    }
}
