//! The placeholder grammar on any text: no panic, and every match lies on character boundaries.
#![no_main]

use libfuzzer_sys::fuzz_target;
use secretsubst::placeholder::{self, Mode};

fuzz_target!(|text: &str| {
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
