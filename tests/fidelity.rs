//! Property: any secret string, injected at any kind of scalar position, reads back exactly
//! under YAML 1.1 (Kubernetes) and YAML 1.2 (serde_yaml), and lines without placeholders are
//! copied unchanged.

use proptest::prelude::*;
use secretsubst::config::{Config, Settings};
use secretsubst::manifest::input::Source;
use secretsubst::manifest::scalar::{PlainType, yaml11_type};
use secretsubst::manifest::tree::{Node, Style, Tree};

const MANIFEST: &str = r#"# keep: a leading comment
apiVersion: v1
kind: Pod
metadata:
  name: fidelity   # keep: trailing comment
spec:
  plain: <path:s#v>
  single: 'x <path:s#v> y'
  double: "x <path:s#v> y"
  flow: [a, "<path:s#v>", <path:s#v>]
  block: |
    line one
    <path:s#v>
    tail <path:s#v> end
  folded: >
    a <path:s#v> b
  nested:
    - name: <path:s#v>
      other: untouched   # keep
  number: 0644
  word: yes
"#;

/// (field path, expected value with `S` standing for the secret)
fn expectations(secret: &str) -> Vec<(&'static str, String)> {
    let s = |t: &str| t.replace('S', secret);
    vec![
        ("spec.plain", secret.to_owned()),
        ("spec.single", s("x S y")),
        ("spec.double", s("x S y")),
        ("spec.flow.1", secret.to_owned()),
        ("spec.flow.2", secret.to_owned()),
        ("spec.block", s("line one\nS\ntail S end\n")),
        ("spec.folded", s("a S b\n")),
        ("spec.nested.0.name", secret.to_owned()),
    ]
}

fn render(secret: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let values = dir.path().join("values.yaml");
    let mut data = serde_yaml::Mapping::new();
    data.insert("v".into(), secret.into());
    let mut file = serde_yaml::Mapping::new();
    file.insert("s".into(), data.into());
    std::fs::write(&values, serde_yaml::to_string(&file).unwrap()).unwrap();
    let settings = Settings::merge(
        [
            ("AVP_TYPE".to_owned(), "file".to_owned()),
            ("AVP_VALUES_FILE".to_owned(), values.display().to_string()),
        ],
        &[],
    );
    let config = Config::from_settings(settings).unwrap();
    let input = [Source {
        name: "fidelity.yaml".into(),
        text: MANIFEST.into(),
    }];
    secretsubst::process(&input, &config, "fidelity.yaml", false)
        .unwrap()
        .text()
}

/// The string at `path` as Kubernetes reads it (libyaml events, YAML 1.1 resolution).
fn read_yaml11(text: &str, path: &str) -> Option<String> {
    let tree = Tree::parse(text).unwrap()?;
    let mut node = &tree.root;
    for part in path.split('.') {
        node = match (node, part.parse::<usize>()) {
            (Node::Seq(items), Ok(i)) => items.get(i)?,
            _ => tree.get(node, part)?,
        };
    }
    let scalar = node.as_scalar()?;
    let is_string = scalar.style != Style::Plain || yaml11_type(&scalar.value) == PlainType::String;
    is_string.then(|| scalar.value.clone())
}

/// The string at `path` as a YAML 1.2 reader (serde_yaml) reads it.
fn read_yaml12(text: &str, path: &str) -> Option<String> {
    let mut value: serde_yaml::Value = serde_yaml::from_str(text).unwrap();
    for part in path.split('.') {
        value = match part.parse::<usize>() {
            Ok(i) => value.get(i)?.clone(),
            Err(_) => value.get(part)?.clone(),
        };
    }
    value.as_str().map(str::to_owned)
}

/// Pieces that break naive YAML writers, mixed with arbitrary text.
fn secret() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("yes".to_owned()),
        Just("0644".to_owned()),
        Just("1e3".to_owned()),
        Just("~".to_owned()),
        Just("---".to_owned()),
        Just("...".to_owned()),
        Just("- x".to_owned()),
        Just(": ".to_owned()),
        Just(" #".to_owned()),
        Just("'".to_owned()),
        Just("\"".to_owned()),
        Just("\\".to_owned()),
        Just("\n".to_owned()),
        Just("\r\n".to_owned()),
        Just("\t".to_owned()),
        Just(" ".to_owned()),
        Just("é✓ 𝄞".to_owned()),
        Just("\u{85}\u{2028}".to_owned()),
        Just("&a *a !t %x @x `x |x >x".to_owned()),
        Just("{[,]}".to_owned()),
        "[a-z0-9]{1,8}",
        any::<String>().prop_map(|s| s
            .chars()
            .filter(|c| !c.is_control() || *c == '\n')
            .collect()),
    ];
    prop::collection::vec(token, 0..6).prop_map(|parts| parts.concat())
}

fn assert_fidelity(secret: &str) {
    let out = render(secret);
    for (path, expected) in expectations(secret) {
        assert_eq!(
            read_yaml11(&out, path).as_deref(),
            Some(expected.as_str()),
            "YAML 1.1 {path} in:\n{out}"
        );
        assert_eq!(
            read_yaml12(&out, path).as_deref(),
            Some(expected.as_str()),
            "YAML 1.2 {path} in:\n{out}"
        );
    }
    let mut rest = out.lines();
    let rewritten_scalar_lines = ["  block: |", "    line one", "  folded: >"];
    let untouched = MANIFEST
        .lines()
        .filter(|l| !l.contains("<path:") && !rewritten_scalar_lines.contains(l));
    for line in untouched {
        assert!(
            rest.any(|o| o == line),
            "line {line:?} missing or out of order in:\n{out}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn any_secret_reads_back_exactly_in_every_position(secret in secret()) {
        assert_fidelity(&secret);
    }
}

#[test]
fn awkward_secrets_read_back_exactly() {
    for secret in [
        "",
        " ",
        "yes",
        "0644",
        "-----BEGIN CERT-----\nabc\n-----END CERT-----\n",
        "a\n\nb\n\n",
        "\n",
        "'\"",
        "p@ss: w#rd",
        " lead",
        "trail ",
        "---",
        "x\r\ny",
        "\u{2028}",
        "tab\there",
    ] {
        assert_fidelity(secret);
    }
}

#[test]
fn values_are_spliced_in_place_keeping_the_original_style() {
    let out = render("s3cr3t");
    let expected = MANIFEST.replace("<path:s#v>", "s3cr3t");
    assert_eq!(out, expected);
}
