//! SIGTERM and SIGINT (what Argo CD sends when its own deadline passes) end the run at once:
//! the renderer's process group is killed, nothing more reaches stdout, and one line on stderr
//! names what the run was waiting for.
//!
//! The handler does all of it itself, with async-signal-safe calls only (atomics, `kill`,
//! `write`, `_exit`), instead of waking a thread: starting a thread and waking it again to tear
//! it down at exit cost every run more than a millisecond of its three (W3 in BENCHMARKS.md).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use crate::wait;

/// The process group of the running renderer, 0 when none runs.
static RENDERER: AtomicI32 = AtomicI32::new(0);
/// Set once a signal is being handled: the run's own ending must then wait for it.
static STOPPING: AtomicBool = AtomicBool::new(false);

/// Installs the handler; before it, the signals end the process by default.
pub fn install() -> std::io::Result<()> {
    for signal in [libc::SIGTERM, libc::SIGINT] {
        // SAFETY: a zeroed sigaction is a valid value to fill in; the handler only makes
        // async-signal-safe calls, and both signals stay blocked while it runs.
        let installed = unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaddset(&mut action.sa_mask, libc::SIGTERM);
            libc::sigaddset(&mut action.sa_mask, libc::SIGINT);
            libc::sigaction(signal, &action, std::ptr::null_mut())
        };
        if installed != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

extern "C" fn on_signal(signal: libc::c_int) {
    if STOPPING.swap(true, Ordering::SeqCst) {
        // Another thread is ending the run: this one must not go on (and print) meanwhile.
        loop {
            // SAFETY: pause(2) only waits.
            unsafe { libc::pause() };
        }
    }
    kill_renderer();
    let name = if signal == libc::SIGINT {
        "SIGINT"
    } else {
        "SIGTERM"
    };
    let mut line = Line::default();
    let _ = write!(line, "error: interrupted by {name}");
    let mut waits = Line::default();
    if wait::describe_in_signal_handler(&mut waits) {
        let _ = write!(line, " while waiting for {}", waits.text());
    }
    line.end();
    // SAFETY: write(2) of an initialised buffer, then _exit(2); both are async-signal-safe.
    unsafe {
        libc::write(2, line.bytes.as_ptr().cast(), line.len);
        libc::_exit(1);
    }
}

/// A line built on the stack, since a signal handler must not allocate: what does not fit is
/// cut at a character boundary and marked.
struct Line {
    bytes: [u8; Line::CAPACITY],
    len: usize,
    cut: bool,
}

impl Line {
    /// Room for a wait description (each name is cut at 2,000 characters) and more.
    const CAPACITY: usize = 4096;
    const CUT: &str = " …";

    fn text(&self) -> &str {
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or_default()
    }

    fn end(&mut self) {
        self.bytes[self.len] = b'\n';
        self.len += 1;
    }
}

impl Default for Line {
    fn default() -> Line {
        Line {
            bytes: [0; Line::CAPACITY],
            len: 0,
            cut: false,
        }
    }
}

impl std::fmt::Write for Line {
    fn write_str(&mut self, text: &str) -> std::fmt::Result {
        if self.cut {
            return Err(std::fmt::Error);
        }
        // Room is always left for the cut mark and the newline.
        let room = Self::CAPACITY - Self::CUT.len() - 1 - self.len;
        let mut take = text.len().min(room);
        while !text.is_char_boundary(take) {
            take -= 1;
        }
        self.bytes[self.len..self.len + take].copy_from_slice(&text.as_bytes()[..take]);
        self.len += take;
        if take == text.len() {
            return Ok(());
        }
        self.cut = true;
        self.bytes[self.len..self.len + Self::CUT.len()].copy_from_slice(Self::CUT.as_bytes());
        self.len += Self::CUT.len();
        Err(std::fmt::Error)
    }
}

/// Blocks for good once a signal is being handled, so that the run cannot print its own ending
/// (the renderer's death, or the output) before the signal's line and exit.
pub fn hold_if_interrupted() {
    while STOPPING.load(Ordering::SeqCst) {
        std::thread::park();
    }
}

/// Records the renderer's process group, so a signal kills it and everything it started.
pub fn set_renderer(group: i32) {
    RENDERER.store(group, Ordering::SeqCst);
}

/// Kills the process group `group` (the renderer and what it started) and forgets it.
pub fn kill_group(group: i32) {
    let _ = RENDERER.compare_exchange(group, 0, Ordering::SeqCst, Ordering::SeqCst);
    if group > 0 {
        // SAFETY: kill(2) with a negative pid signals a process group; it touches no memory.
        unsafe {
            libc::kill(-group, libc::SIGKILL);
        }
    }
}

fn kill_renderer() {
    kill_group(RENDERER.load(Ordering::SeqCst));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_keeps_what_fits_and_marks_the_cut() {
        let mut line = Line::default();
        let _ = write!(line, "error: interrupted by SIGTERM");
        line.end();
        assert_eq!(line.text(), "error: interrupted by SIGTERM\n");

        let mut line = Line::default();
        let long = "é".repeat(Line::CAPACITY);
        assert!(write!(line, "x{long}").is_err());
        assert!(write!(line, "more").is_err());
        line.end();
        let text = line.text();
        assert!(text.len() <= Line::CAPACITY);
        assert!(text.starts_with("xéé"), "{text}");
        assert!(text.ends_with("é …\n"), "{text}");
    }
}
