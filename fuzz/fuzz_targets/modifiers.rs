//! The modifier pipeline: the first line is the value, each later line one `| stage`. No panic,
//! no abort, and no result past the value size limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use secretsubst::placeholder::Modifier;
use secretsubst::value::{MAX_VALUE_BYTES, Value};

fuzz_target!(|text: &str| {
    quiet_expected_panics();
    let mut lines = text.split('\n');
    let mut value = Value::String(lines.next().unwrap_or_default().replace("\\n", "\n"));
    for stage in lines.take(6) {
        let Ok(modifier) = Modifier::parse(stage) else {
            return;
        };
        match modifier.apply(value) {
            Ok(next) => {
                assert!(next.size() <= MAX_VALUE_BYTES);
                value = next;
            }
            Err(_) => return,
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
