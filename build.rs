//! Start-up time on glibc Linux (W3; see BENCHMARKS.md), in two link settings of the binary:
//! - Position-dependent: a PIE of this size has about 52,000 relative relocations, which the
//!   loader applies on every start, dirtying some 200 pages. Go programs such as AVP link the same
//!   way.
//! - The unwinder linked in (libgcc_eh) instead of loaded (libgcc_s.so.1): loading that library
//!   runs its constructor, whose CPUID queries trap to the hypervisor on virtual machines, and
//!   cost 0.2–0.3 ms of every run here, a quarter of a `/bin/true`. Rust's std asks the linker
//!   for `-lgcc_s` by name, so a directory that comes first in the search holds a `libgcc_s.a`
//!   that is the compiler's own `libgcc_eh.a`. Without one (another compiler), nothing changes.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os != "linux" || env != "gnu" {
        return;
    }
    println!("cargo:rustc-link-arg-bins=-no-pie");
    if let Some(unwinder) = static_unwinder() {
        let dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"))
            .join("static-unwinder");
        std::fs::create_dir_all(&dir).expect("OUT_DIR is writable");
        std::fs::copy(&unwinder, dir.join("libgcc_s.a")).expect("libgcc_eh.a is readable");
        println!("cargo:rustc-link-arg-bins=-L{}", dir.display());
    }
}

/// The linker driver's static unwinder, if it has one.
fn static_unwinder() -> Option<PathBuf> {
    let output = Command::new("cc")
        .arg("-print-file-name=libgcc_eh.a")
        .output()
        .ok()?;
    let path = PathBuf::from(String::from_utf8(output.stdout).ok()?.trim());
    // Without the file, the driver prints the bare name back.
    (output.status.success() && path.is_absolute() && path.is_file()).then_some(path)
}
