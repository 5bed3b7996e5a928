//! SOPS files as a tenant could commit them, through every store and the decryption with the
//! test identity (testdata/sops/keys/test.agekey): no panic, no abort, no hang; a success only
//! when the MAC verified.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use secretsubst::sops::{self, Identities};

static IDENTITIES: LazyLock<Identities> = LazyLock::new(|| {
    let key = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../testdata/sops/keys/test.agekey"
    );
    Identities::load(&|name| (name == "SOPS_AGE_KEY_FILE").then(|| key.to_owned()))
        .expect("the test identity loads")
});

fuzz_target!(|text: &str| {
    quiet_expected_panics();
    for (branches, flat) in [
        (sops::stores::parse_yaml(text), false),
        (sops::stores::parse_dotenv(text), true),
    ] {
        let Ok(branches) = branches else { continue };
        let Ok(file) = sops::File::new(branches, flat) else {
            continue;
        };
        let _ = file.decrypt(&IDENTITIES);
    }
});

/// secretsubst's panic hook, which stays quiet for the panics it catches on purpose (a
/// third-party parser's), instead of libFuzzer's, which aborts on every panic; a panic that
/// escapes still reaches `fuzz_target!`, which aborts on it.
fn quiet_expected_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| std::panic::set_hook(Box::new(secretsubst::error::panic_hook)));
}
