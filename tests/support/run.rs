//! The one way the integration tests run the binary: a cleared environment (only `PATH`, and
//! `HOME` in a fresh temporary directory unless the test names one), the crate root as working
//! directory, arguments, optional stdin, and the output captured.

use std::ffi::OsStr;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const CRATE_ROOT: &str = env!("CARGO_MANIFEST_DIR");

pub struct Run {
    cmd: Command,
    stdin: Option<Vec<u8>>,
    /// The default `HOME`, removed when the run is dropped.
    _home: Option<tempfile::TempDir>,
}

impl Run {
    /// `secretsubst ARGS`.
    pub fn new<I, S>(args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let home = tempfile::tempdir().expect("a temporary HOME");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_secretsubst"));
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", home.path())
            .current_dir(CRATE_ROOT)
            .args(args);
        Run {
            cmd,
            stdin: None,
            _home: Some(home),
        }
    }

    /// `secretsubst generate -` reading `input`.
    pub fn generate(input: &str) -> Run {
        Run::new(["generate", "-"]).stdin(input)
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Run {
        self.cmd.arg(arg);
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cmd.args(args);
        self
    }

    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Run {
        self.cmd.env(key, value);
        self
    }

    pub fn envs(mut self, env: &[(&str, &str)]) -> Run {
        self.cmd.envs(env.iter().copied());
        self
    }

    /// Without `key` in the environment, even `PATH` or `HOME` (a test of a bare environment).
    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Run {
        self.cmd.env_remove(key);
        self
    }

    /// `HOME` at `home` instead of a fresh directory (a token cache shared by several runs).
    pub fn home(mut self, home: &Path) -> Run {
        self.cmd.env("HOME", home);
        self
    }

    pub fn dir(mut self, dir: impl AsRef<Path>) -> Run {
        self.cmd.current_dir(dir);
        self
    }

    pub fn stdin(mut self, input: impl Into<Vec<u8>>) -> Run {
        self.stdin = Some(input.into());
        self
    }

    /// The command as set up, for tests that drive the process themselves (signals); the
    /// default `HOME` lives as long as the returned guard.
    pub fn command(self) -> (Command, Option<tempfile::TempDir>) {
        (self.cmd, self._home)
    }

    /// Starts the run without input, sends it `signal` after `delay`, and collects its output
    /// and how long it took to end after the signal.
    pub fn interrupted(mut self, signal: i32, delay: Duration) -> (Output, Duration) {
        let child = self
            .cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start secretsubst");
        std::thread::sleep(delay);
        let signalled = Instant::now();
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(child.id() as i32, signal) };
        let out = child
            .wait_with_output()
            .expect("secretsubst did not finish");
        (out, signalled.elapsed())
    }

    /// Runs to the end. Stdin is written from another thread, so that a child writing before it
    /// has read all its input cannot block the test; without input, stdin is closed.
    pub fn output(mut self) -> Output {
        self.cmd
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = self.cmd.spawn().expect("cannot start secretsubst");
        let writer = self.stdin.take().map(|input| {
            let mut pipe = child.stdin.take().expect("stdin is piped");
            std::thread::spawn(move || pipe.write_all(&input))
        });
        let out = child
            .wait_with_output()
            .expect("secretsubst did not finish");
        if let Some(writer) = writer {
            // A child that exits before reading everything closes the pipe: not a test failure.
            let _ = writer.join().expect("the stdin writer panicked");
        }
        out
    }
}
