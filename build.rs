//! Links the binary as a position-dependent executable on glibc Linux: a PIE of this size has
//! about 52,000 relative relocations, which the loader applies on every start, dirtying some 200
//! pages (W3 start-up time; see BENCHMARKS.md). Go programs such as AVP link the same way.

fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
