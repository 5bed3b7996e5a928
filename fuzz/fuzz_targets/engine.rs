//! The whole engine on any input with the values-file backend (testdata/values.yaml) as the
//! default and as the profile `team` (so `<path:team:…>` prefixes and the backend annotation are
//! exercised): no panic, no abort, no hang, and every success reads back: each output document
//! parses.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use secretsubst::config::{Config, Layer, Settings};
use secretsubst::manifest::{self, input::Source};

static CONFIG: LazyLock<Config> = LazyLock::new(|| {
    let values = concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/values.yaml");
    let env = [
        ("AVP_TYPE".to_owned(), "file".to_owned()),
        ("AVP_VALUES_FILE".to_owned(), values.to_owned()),
    ];
    let team = env.iter().cloned().collect();
    Config::new(
        Settings::merge(env, &[]),
        [("team".to_owned(), Layer::flat("fuzz", team))].into(),
    )
    .expect("valid settings")
});

fuzz_target!(|text: &str| {
    quiet_expected_panics();
    let inputs = [Source {
        name: "fuzz.yaml".to_owned(),
        text: text.to_owned(),
    }];
    let Ok(rendered) = secretsubst::process(&inputs, &CONFIG, "fuzz.yaml", true) else {
        return;
    };
    let output = Source {
        name: "output".to_owned(),
        text: rendered.text(),
    };
    let file = manifest::split(&output).expect("the output splits into documents");
    for chunk in &file.split.chunks {
        if let Err(e) = file.parse(chunk) {
            panic!("an output document does not parse: {e}");
        }
    }
});

/// secretsubst's panic hook, which stays quiet for the panics it catches on purpose (a
/// third-party parser's), instead of libFuzzer's, which aborts on every panic; a panic that
/// escapes still reaches `fuzz_target!`, which aborts on it.
fn quiet_expected_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| std::panic::set_hook(Box::new(secretsubst::error::panic_hook)));
}
