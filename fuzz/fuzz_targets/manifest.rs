//! The document splitter and parser on any text: no panic, no stack overflow, no hang; typed
//! values (what `yamlParse` builds) within their bounds; every document the scanner calls
//! untouched is one the parser reads as a manifest of the kind its text shows.
#![no_main]

use libfuzzer_sys::fuzz_target;
use secretsubst::manifest::tree::{Node, Style, Tree};
use secretsubst::manifest::{self, input::Source, scan};

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
        let parsed = file.parse(chunk);
        if !file.split.json && scan::untouched_manifest(chunk.body) {
            assert_untouched(chunk.body, &parsed);
        }
        if let Ok(Some(tree)) = parsed {
            let _ = tree.to_value();
            let _ = tree.get(&tree.root, "kind");
            let _ = tree.entries(&tree.root);
        }
    }
    let _ = Tree::parse(text);
});

/// Panics unless `parsed` is a mapping whose kind is the plain, non-Secret scalar written on the
/// text's `kind: ` line: an untouched document's only line at the first column whose key is
/// `kind` (`kind:x:` is another key).
fn assert_untouched(body: &str, parsed: &Result<Option<Tree>, String>) {
    let Ok(Some(tree)) = parsed else {
        panic!("untouched, but the parser says {parsed:?}: {body:?}");
    };
    assert!(matches!(tree.root, Node::Map(_)), "{body:?}");
    let written = body
        .lines()
        .find_map(|line| line.strip_prefix("kind: "))
        .and_then(|value| value.split_whitespace().next());
    let kind = tree.get(&tree.root, "kind").and_then(Node::as_scalar);
    assert!(
        kind.is_some_and(|k| k.style == Style::Plain
            && k.tag.is_none()
            && Some(k.value.as_str()) == written
            && k.value != "Secret"),
        "untouched, but its kind is {kind:?}: {body:?}"
    );
}

/// secretsubst's panic hook, which stays quiet for the panics it catches on purpose (a
/// third-party parser's), instead of libFuzzer's, which aborts on every panic; a panic that
/// escapes still reaches `fuzz_target!`, which aborts on it.
fn quiet_expected_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| std::panic::set_hook(Box::new(secretsubst::error::panic_hook)));
}
