//! The modifier pipeline: the first line is the value, each later line one `| stage`. No panic,
//! no abort, and no result past the value size limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use secretsubst::placeholder::Modifier;
use secretsubst::value::{MAX_VALUE_BYTES, Value};

fuzz_target!(|text: &str| {
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
