//! The placeholder grammar on any text: no panic, and every match lies on character boundaries.
#![no_main]

use libfuzzer_sys::fuzz_target;
use secretsubst::placeholder::{self, Mode};

fuzz_target!(|text: &str| {
    quiet_expected_panics();
    for mode in [Mode::Inline, Mode::Generic] {
        for found in placeholder::find(text, mode) {
            let range = match found {
                Ok(p) => p.range,
                Err(e) => e.range,
            };
            assert!(text.is_char_boundary(range.start) && text.is_char_boundary(range.end));
        }
    }
    let _ = placeholder::has_generic_match(text);
});

/// secretsubst's panic hook, which stays quiet for the panics it catches on purpose (a
/// third-party parser's), instead of libFuzzer's, which aborts on every panic; a panic that
/// escapes still reaches `fuzz_target!`, which aborts on it.
fn quiet_expected_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| std::panic::set_hook(Box::new(secretsubst::error::panic_hook)));
}
