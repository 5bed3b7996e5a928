//! The document splitter and parser on any text: no panic, no stack overflow, no hang; typed
//! values (what `yamlParse` builds) within their bounds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use secretsubst::manifest::{self, input::Source, tree::Tree};

fuzz_target!(|text: &str| {
    quiet_expected_panics();
    let source = Source {
        name: "fuzz.yaml".to_owned(),
        text: text.to_owned(),
    };
    let Ok(file) = manifest::split(&source) else {
        return;
    };
    for chunk in &file.split.chunks {
        if let Ok(Some(tree)) = file.parse(chunk) {
            let _ = tree.to_value();
            let _ = tree.get(&tree.root, "kind");
            let _ = tree.entries(&tree.root);
        }
    }
    let _ = Tree::parse(text);
});

/// secretsubst's panic hook, which stays quiet for the panics it catches on purpose (a
/// third-party parser's), instead of libFuzzer's, which aborts on every panic; a panic that
/// escapes still reaches `fuzz_target!`, which aborts on it.
fn quiet_expected_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| std::panic::set_hook(Box::new(secretsubst::error::panic_hook)));
}
