//! SIGTERM and SIGINT (what Argo CD sends when its own deadline passes) end the run at once:
//! the renderer's process group is killed, nothing more reaches stdout, and one line on stderr
//! names what the run was waiting for.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::wait;

/// The process group of the running renderer, 0 when none runs.
static RENDERER: AtomicI32 = AtomicI32::new(0);
/// Set once a signal is being handled: the run's own ending must then wait for it.
static STOPPING: AtomicBool = AtomicBool::new(false);

/// Starts the thread that handles the signals; before it, they end the process by default.
pub fn install() -> std::io::Result<()> {
    let mut signals = Signals::new([SIGTERM, SIGINT])?;
    std::thread::Builder::new()
        .name("signals".to_owned())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                STOPPING.store(true, Ordering::SeqCst);
                kill_renderer();
                let name = if signal == SIGINT {
                    "SIGINT"
                } else {
                    "SIGTERM"
                };
                let line = match wait::describe() {
                    Some(what) => format!("interrupted by {name} while waiting for {what}"),
                    None => format!("interrupted by {name}"),
                };
                eprintln!("error: {}", crate::error::sanitize(&line));
                std::process::exit(1);
            }
        })?;
    Ok(())
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
