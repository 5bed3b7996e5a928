//! Pipeline mode: runs the renderer (`helm template …`, `kustomize build .`) and takes its stdout
//! as the input, so a failing render can never pass for an empty, successful one.

use std::fmt;
use std::io::Read as _;
use std::os::unix::process::ExitStatusExt as _;
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail};

use crate::config::Deadline;
use crate::manifest::input::Source;

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
pub fn run(command: &[String], deadline: Option<Deadline>) -> anyhow::Result<Source> {
    let (program, args) = command.split_first().context("no command after --")?;
    let shown = command.join(" ");
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("cannot run {program}"))?;
    let mut stdout = child.stdout.take().context("child stdout is piped")?;
    let reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        stdout.read_to_end(&mut bytes).map(|_| bytes)
    });
    let status = match deadline {
        None => child.wait()?,
        Some(deadline) => {
            let mut pause = Duration::from_millis(1);
            loop {
                if let Some(status) = child.try_wait()? {
                    break status;
                }
                if deadline.remaining().is_zero() {
                    // Killing an already finished child fails harmlessly.
                    let _ = child.kill();
                    child.wait()?;
                    bail!(deadline.exceeded(&format!("`{shown}`")));
                }
                std::thread::sleep(pause.min(deadline.remaining()));
                pause = (pause * 2).min(Duration::from_millis(20));
            }
        }
    };
    let bytes = reader
        .join()
        .map_err(|_| anyhow::anyhow!("reading the output of `{shown}` failed"))?
        .with_context(|| format!("cannot read the output of `{shown}`"))?;
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

    fn sh(script: &str) -> Vec<String> {
        vec!["sh".into(), "-c".into(), script.into()]
    }

    #[test]
    fn the_childs_stdout_is_the_input() {
        let source = run(&sh("printf 'kind: A\\n'"), None).unwrap();
        assert_eq!(
            (source.name.as_str(), source.text.as_str()),
            ("<sh>", "kind: A\n")
        );
    }

    #[test]
    fn a_failing_child_gives_its_exit_status() {
        let err = run(&sh("echo partial; exit 3"), None).unwrap_err();
        let failed = err.downcast_ref::<ChildFailed>().unwrap();
        assert_eq!(failed.code, 3);
        assert_eq!(
            err.to_string(),
            "`sh -c echo partial; exit 3` failed with exit status 3"
        );
    }

    #[test]
    fn a_killed_child_reports_the_signal_like_a_shell() {
        let err = run(&sh("kill -TERM $$"), None).unwrap_err();
        assert_eq!(err.downcast_ref::<ChildFailed>().unwrap().code, 128 + 15);
    }

    #[test]
    fn a_missing_program_is_named() {
        let err = run(&["no-such-renderer-xyz".to_owned()], None).unwrap_err();
        assert_eq!(err.to_string(), "cannot run no-such-renderer-xyz");
    }

    #[test]
    fn a_slow_child_is_stopped_before_the_deadline() {
        let deadline = Deadline::from_timeout(Duration::from_millis(400));
        let err = run(&sh("sleep 30"), Some(deadline)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "gave up waiting for `sh -c sleep 30`: ARGOCD_EXEC_TIMEOUT (400ms) is about to end the plugin"
        );
    }
}
