//! Integration tests that run the real `secretsubst` binary on the fixtures in `testdata/`.
//!
//! Every run starts from a cleared environment (only `PATH`, and `HOME` in an empty temporary
//! directory) plus the values-file backend, with the crate root as working directory, so that
//! messages name the relative `testdata/...` paths and the snapshots are stable. Expected output
//! and error text live in `tests/snapshots/`.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Output;

use base64::Engine as _;
use serde::Deserialize as _;
use serde_yaml::Value;
use support::run::{CRATE_ROOT, Run};

const VALUES_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/values.yaml");
const VERBOSE: &str = "--verbose-sensitive-output";

// ---------------------------------------------------------------------------------------------
// Running the binary
// ---------------------------------------------------------------------------------------------

/// The binary with the values-file backend configured, plus `env` (which may override it).
fn command(args: &[&str], env: &[(&str, &str)]) -> Run {
    Run::new(args)
        .env("AVP_TYPE", "file")
        .env("AVP_VALUES_FILE", VALUES_FILE)
        .envs(env)
}

/// Runs with `args` and `env`, feeding `stdin` (or nothing: stdin is closed).
fn run(args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Output {
    let run = command(args, env);
    match stdin {
        Some(input) => run.stdin(input),
        None => run,
    }
    .output()
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("stdout is not UTF-8")
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).expect("stderr is not UTF-8")
}

fn assert_exit_code(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "unexpected exit status\n--- stdout:\n{}\n--- stderr:\n{}",
        stdout(out),
        stderr(out),
    );
}

/// Exit 1 and nothing on stdout: what every failure must look like.
fn assert_failed(out: &Output) {
    assert_exit_code(out, 1);
    assert_eq!(stdout(out), "", "a failed run must print nothing on stdout");
}

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(CRATE_ROOT).join(path))
        .unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

// ---------------------------------------------------------------------------------------------
// Reading manifest streams in the tests
// ---------------------------------------------------------------------------------------------

fn is_separator(line: &str) -> bool {
    let line = line.trim_end();
    line == "---" || line.starts_with("--- ")
}

/// Splits a stream before each `---` line (YAML document separators, also how the files of a
/// directory are joined). The pieces, each starting with its separator, concatenate to `text`.
fn split_documents(text: &str) -> Vec<&str> {
    let mut documents = Vec::new();
    let (mut start, mut offset) = (0, 0);
    for line in text.split_inclusive('\n') {
        if offset > start && is_separator(line) {
            documents.push(&text[start..offset]);
            start = offset;
        }
        offset += line.len();
    }
    documents.push(&text[start..]);
    documents
}

/// `document` without its leading separator line.
fn body(document: &str) -> &str {
    match document.split_inclusive('\n').next() {
        Some(first) if is_separator(first) => &document[first.len()..],
        _ => document,
    }
}

fn parse_yaml(text: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(text)
        .map(|doc| {
            Value::deserialize(doc)
                .unwrap_or_else(|e| panic!("output is not valid YAML: {e}\n{text}"))
        })
        .collect()
}

/// Every manifest of an output stream. JSON stays JSON, and one JSON file may hold several
/// concatenated objects (not a YAML stream), so each object is parsed on its own; JSON is YAML.
fn parse_manifests(stream: &str) -> Vec<Value> {
    let mut manifests = Vec::new();
    for document in split_documents(stream) {
        let body = body(document);
        if !body.trim_start().starts_with('{') {
            manifests.extend(parse_yaml(document));
            continue;
        }
        let mut objects =
            serde_json::Deserializer::from_str(body).into_iter::<serde::de::IgnoredAny>();
        let mut start = 0;
        while let Some(object) = objects.next() {
            object.unwrap_or_else(|e| panic!("output is not valid JSON: {e}\n{body}"));
            manifests.extend(parse_yaml(&body[start..objects.byte_offset()]));
            start = objects.byte_offset();
        }
    }
    manifests.retain(|m| !m.is_null());
    manifests
}

/// A document that is a mapping without `kind` (Chart.yaml): left out of the output.
fn is_kindless(document: &str) -> bool {
    matches!(serde_yaml::from_str(document), Ok(Value::Mapping(m)) if !m.contains_key("kind"))
}

/// Whether `line` holds base64 of a placeholder (a Secret `data` value that gets substituted).
fn holds_base64_placeholder(line: &str) -> bool {
    line.split(|c: char| !(c.is_ascii_alphanumeric() || "+/=".contains(c)))
        .filter(|token| token.len() >= 8)
        .filter_map(|token| base64::engine::general_purpose::STANDARD.decode(token).ok())
        .any(|bytes| String::from_utf8_lossy(&bytes).contains("<path:"))
}

/// Checks an example app's output: it parses as `manifests` manifests (each a mapping with a
/// `kind`), every input line that holds no placeholder and is not in a dropped kind-less document
/// comes out unchanged and in input order, and the final newline matches the last input's.
/// `inputs` are the input files in walk order.
fn assert_faithful_output(inputs: &[&str], output: &str, manifests: usize) {
    let parsed = parse_manifests(output);
    assert_eq!(parsed.len(), manifests, "number of manifests in the output");
    for manifest in &parsed {
        assert!(
            manifest.get("kind").is_some_and(Value::is_string),
            "output manifest without kind: {manifest:?}"
        );
    }

    let mut output_lines = output.lines();
    let mut last_input = String::new();
    for input in inputs {
        let text = read(input);
        let kept = split_documents(&text)
            .into_iter()
            .filter(|document| !is_kindless(document))
            .flat_map(str::lines)
            .filter(|line| !line.contains('<') && !holds_base64_placeholder(line));
        for line in kept {
            assert!(
                output_lines.any(|out| out == line),
                "line of {input} missing from the output, changed or out of order: {line:?}"
            );
        }
        last_input = text;
    }
    assert_eq!(
        output.ends_with('\n'),
        last_input.ends_with('\n'),
        "final newline differs from the input's"
    );
}

// ---------------------------------------------------------------------------------------------
// Example apps
// ---------------------------------------------------------------------------------------------

/// `generate <target>` on an example app: exit 0 and a faithful output of `manifests` manifests,
/// which is returned.
fn generate_app(target: &str, inputs: &[&str], manifests: usize) -> String {
    let out = run(&["generate", target], &[], None);
    assert_exit_code(&out, 0);
    let output = stdout(&out);
    assert_faithful_output(inputs, &output, manifests);
    output
}

const PLAIN_FILES: &[&str] = &[
    "testdata/apps/plain/Chart.yaml",
    "testdata/apps/plain/configmap.yaml",
    "testdata/apps/plain/deployment.yaml",
    "testdata/apps/plain/extra/backup-cronjob.yaml",
    "testdata/apps/plain/secret.yaml",
];
const HELM_STREAM: &str = "testdata/apps/helm-stream.yaml";
const JSON_APP: &str = "testdata/apps/json/app.json";
const JSON_LIST: &str = "testdata/apps/json/list.json";

#[test]
fn plain_directory_is_substituted_in_walk_order() {
    let output = generate_app("testdata/apps/plain", PLAIN_FILES, 8);
    insta::assert_snapshot!("app_plain_directory", output);
}

#[test]
fn kindless_chart_yaml_is_left_out_with_a_notice() {
    let out = run(&["generate", "testdata/apps/plain"], &[], None);
    assert_exit_code(&out, 0);
    assert!(
        stderr(&out).contains("testdata/apps/plain/Chart.yaml"),
        "no notice naming Chart.yaml: {}",
        stderr(&out)
    );
    assert!(
        !stdout(&out).contains("oncall-webhook"),
        "Chart.yaml is in the output"
    );
}

#[test]
fn profiles_example_reads_two_backends_by_prefix_and_annotation() {
    let input = "testdata/profiles/app.yaml";
    let out = run(
        &["generate", "-c", "testdata/profiles/settings.yaml", input],
        &[("AVP_TYPE", ""), ("AVP_VALUES_FILE", "")],
        None,
    );
    assert_exit_code(&out, 0);
    let output = stdout(&out);
    assert_faithful_output(&[input], &output, 2);
    insta::assert_snapshot!("app_profiles", output);
}

#[test]
fn mask_shows_which_secret_lands_where_never_its_value() {
    let input = "kind: Deployment\nspec:\n  replicas: <path:secret/data/app#replicas>\n  user: \"u-<path:secret/data/app#username>\"\n---\nkind: Secret\ndata:\n  pw: PHBhdGg6c2VjcmV0L2RhdGEvYXBwI3Bhc3N3b3JkPg==\n";
    let out = run(&["generate", "--mask", "-"], &[], Some(input));
    assert_exit_code(&out, 0);
    // A typed position gets the marker as a string; a base64 Secret value its base64.
    assert_eq!(
        stdout(&out),
        "kind: Deployment\nspec:\n  replicas: (masked default:secret/data/app#replicas)\n  user: \"u-(masked default:secret/data/app#username)\"\n---\nkind: Secret\ndata:\n  pw: KG1hc2tlZCBkZWZhdWx0OnNlY3JldC9kYXRhL2FwcCNwYXNzd29yZCk=\n"
    );
    assert!(!stdout(&out).to_lowercase().contains("s3cr3t"));
    // Still the real render: a missing key fails as it would without the flag.
    let out = run(
        &["generate", "--mask", "-"],
        &[],
        Some("kind: A\nx: <path:secret/data/app#nope>\n"),
    );
    assert_exit_code(&out, 1);
    assert_eq!(stdout(&out), "");
}

const CHECK_INPUT: &str = "kind: Secret\nmetadata:\n  name: s\nstringData:\n  a: <path:secret/data/app#username>\n  b: <path:secret/data/app#nope>\n  c: <path:secret/data/none#k>\n  d: <path:secret/data/app#username | nosuch>\n---\nkind: Deployment\nmetadata:\n  annotations:\n    avp.kubernetes.io/remove-missing: \"true\"\nx: 1\n";

#[test]
fn check_reports_every_placeholder_and_problem_without_a_value() {
    let out = run(&["check", "-", VERBOSE], &[], Some(CHECK_INPUT));
    assert_exit_code(&out, 1);
    assert_eq!(
        stdout(&out),
        "\
LOCATION                                 PLACEHOLDER                               PROFILE  STATUS       REASON
<stdin>: doc 1 (Secret/s): stringData.a  <path:secret/data/app#username>           default  ok
<stdin>: doc 1 (Secret/s): stringData.b  <path:secret/data/app#nope>               default  missing-key  missing value: key \"nope\" not found in secret/data/app
<stdin>: doc 1 (Secret/s): stringData.c  <path:secret/data/none#k>                 default  not-found    file: secret secret/data/none not found in the values file
<stdin>: doc 1 (Secret/s): stringData.d  <path:secret/data/app#username | nosuch>  -        invalid      invalid modifier: nosuch
<stdin>: doc 2 (Deployment)              -                                         -        invalid      avp.kubernetes.io/remove-missing annotation can only be used on Secret or ConfigMap resources
4 placeholders: 1 ok, 3 failed; 1 other problem
"
    );
    let all = format!("{}{}", stdout(&out), stderr(&out));
    assert!(!all.to_lowercase().contains("s3cr3t"), "{all}");
    assert!(
        stderr(&out).contains("error: check: 4 of 5 rows failed"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn check_offline_contacts_no_backend_and_prints_json_rows() {
    // No backend configured at all: offline needs none.
    let out = run(
        &["check", "--offline", "--format", "json", "-"],
        &[("AVP_TYPE", ""), ("AVP_VALUES_FILE", "")],
        Some(CHECK_INPUT),
    );
    assert_exit_code(&out, 1);
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let statuses: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["ok", "ok", "ok", "invalid", "invalid"]);
    assert_eq!(
        rows[0],
        serde_json::json!({"file": "<stdin>", "document": 1, "kind": "Secret", "name": "s",
            "field": "stringData.a", "placeholder": "<path:secret/data/app#username>",
            "backend": "default", "path": "secret/data/app", "key": "username",
            "version": null, "status": "ok", "reason": ""})
    );
    let ok = run(
        &["check", "--offline", "-"],
        &[],
        Some("kind: A\nx: <path:secret/data/app#username>\n"),
    );
    assert_exit_code(&ok, 0);
    assert!(
        stdout(&ok).ends_with("1 placeholder: 1 ok, 0 failed\n"),
        "{}",
        stdout(&ok)
    );
}

#[test]
fn refs_lists_each_secret_once_sorted_without_a_backend() {
    // No backend is configured: refs contacts none.
    let out = run(
        &["refs", "testdata/apps/plain"],
        &[("AVP_TYPE", ""), ("AVP_VALUES_FILE", "")],
        None,
    );
    assert_exit_code(&out, 0);
    assert_eq!(
        stdout(&out),
        "default\tsecret/data/app\ndefault\tsecret/data/app\t1\ndefault\tsecret/data/backup\ndefault\tsecret/data/db\n"
    );
}

#[test]
fn refs_in_json_name_profiles_and_versions() {
    let out = run(
        &[
            "refs",
            "--format",
            "json",
            "-c",
            "testdata/profiles/settings.yaml",
            "testdata/profiles/app.yaml",
        ],
        &[],
        None,
    );
    assert_exit_code(&out, 0);
    let refs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        refs,
        serde_json::json!([
            {"profile": "default", "path": "secret/data/app", "version": null},
            {"profile": "team", "path": "payments/api", "version": null},
        ])
    );
}

#[test]
fn refs_of_an_input_with_errors_print_nothing() {
    let out = run(
        &["refs", "-"],
        &[],
        Some("kind: A\nx: <path:a#b | nosuch>\ny: <path:c#d>\n"),
    );
    assert_exit_code(&out, 1);
    assert_eq!(stdout(&out), "");
    assert_eq!(
        stderr(&out),
        "error: <stdin>: doc 1 (A): x: <path:a#b | nosuch>: invalid modifier: nosuch\n"
    );
}

#[test]
fn helm_stream_file_is_substituted() {
    let output = generate_app(HELM_STREAM, &[HELM_STREAM], 6);
    insta::assert_snapshot!("app_helm_stream", output);
}

#[test]
fn helm_stream_from_stdin_matches_the_file_output() {
    let out = run(&["generate", "-"], &[], Some(&read(HELM_STREAM)));
    assert_exit_code(&out, 0);
    let from_stdin = stdout(&out);
    assert_faithful_output(&[HELM_STREAM], &from_stdin, 6);
    assert_eq!(from_stdin, generate_app(HELM_STREAM, &[HELM_STREAM], 6));
}

#[test]
fn kustomize_stream_is_substituted() {
    let input = "testdata/apps/kustomize-stream.yaml";
    let output = generate_app(input, &[input], 4);
    insta::assert_snapshot!("app_kustomize_stream", output);
}

#[test]
fn json_object_stays_json() {
    let output = generate_app(JSON_APP, &[JSON_APP], 1);
    insta::assert_snapshot!("app_json_object", output);
}

#[test]
fn concatenated_json_objects_stay_json() {
    let output = generate_app(JSON_LIST, &[JSON_LIST], 2);
    insta::assert_snapshot!("app_json_list", output);
}

#[test]
fn json_directory_joins_files_with_separators() {
    let output = generate_app("testdata/apps/json", &[JSON_APP, JSON_LIST], 3);
    insta::assert_snapshot!("app_json_directory", output);
}

/// A secret of values.yaml, as the backend holds it.
fn secret(path: &str, key: &str) -> Value {
    let values: Value = serde_yaml::from_str(&read("testdata/values.yaml")).expect("values.yaml");
    values[path][key].clone()
}

/// The manifest named `name`.
fn manifest<'a>(manifests: &'a [Value], name: &str) -> &'a Value {
    manifests
        .iter()
        .find(|m| m["metadata"]["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("no manifest named {name}"))
}

/// The value at `pointer`: `/`-separated keys and list indexes (Null when absent).
fn at<'a>(value: &'a Value, pointer: &str) -> &'a Value {
    pointer
        .split('/')
        .fold(value, |value, step| match step.parse::<usize>() {
            Ok(index) => &value[index],
            Err(_) => &value[step],
        })
}

#[test]
fn substituted_values_read_back_exactly() {
    let out = run(&["generate", "testdata/apps/plain"], &[], None);
    assert_exit_code(&out, 0);
    let manifests = parse_manifests(&stdout(&out));
    let named = |name| manifest(&manifests, name);
    let string = |s: &str| Value::String(s.to_owned());
    let app = |key| secret("secret/data/app", key);
    let app_v1 = |key| secret("secret/data/app#1", key);
    let backup = |key| secret("secret/data/backup", key);

    // Strings that other YAML types could be mistaken for stay strings.
    let cron = at(
        named("orders-db-backup"),
        "spec/jobTemplate/spec/template/spec/containers/0",
    );
    assert_eq!(at(cron, "env/0/value"), &backup("encrypt"));
    assert_eq!(at(cron, "env/1/value"), &backup("file_mode"));
    assert_eq!(at(cron, "env/2/value"), &backup("passphrase"));
    assert_eq!(at(cron, "env/3/value"), &string("note:"));
    assert_eq!(at(cron, "args/3"), &backup("prefix"));

    // Typed injection for a whole plain scalar; a quoted placeholder always gives a string.
    let deployment = named("orders-api");
    let api = at(deployment, "spec/template/spec/containers/0");
    assert_eq!(at(deployment, "spec/replicas"), &app("replicas"));
    assert_eq!(at(api, "ports/0/containerPort"), &app("http_port"));
    assert_eq!(at(api, "env/1/value"), &app("password"));
    assert_eq!(at(api, "env/2/value"), &string("5432"));
    assert_eq!(at(api, "env/3/value"), &string("true"));

    // ConfigMap values are strings, a list becomes compact JSON; remove-missing drops a key.
    let config = named("orders-api-config");
    assert_eq!(at(config, "data/DB_PORT"), &string("5432"));
    let hosts = r#"["s3cr3t-host-a.internal","s3cr3t-host-b.internal"]"#;
    assert_eq!(at(config, "data/ALLOWED_HOSTS"), &string(hosts));
    assert_eq!(
        at(named("orders-api-optional"), "data/BETA_ENDPOINT"),
        &Value::Null
    );

    // Multi-line values, versions, base64-wrapped placeholders, an ignored manifest.
    let credentials = named("orders-api-credentials");
    assert_eq!(at(credentials, "stringData/tls.crt"), &app("tls.crt"));
    assert_eq!(
        at(credentials, "stringData/DB_PASSWORD_PREVIOUS"),
        &app_v1("password")
    );
    assert_eq!(
        at(named("orders-db-previous"), "stringData/password"),
        &app_v1("password")
    );
    let encoded = at(credentials, "data/API_PASSWORD")
        .as_str()
        .expect("a string");
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .expect("valid base64");
    assert_eq!(
        &string(std::str::from_utf8(&decoded).expect("UTF-8")),
        &app("password")
    );
    let token = "<path:secret/data/legacy/webhook#token>";
    assert_eq!(
        at(named("legacy-webhook"), "stringData/token"),
        &string(token)
    );
}

#[test]
#[should_panic(expected = "missing from the output, changed or out of order")]
fn fidelity_check_catches_a_changed_line() {
    let output = generate_app(HELM_STREAM, &[HELM_STREAM], 6);
    assert_faithful_output(
        &[HELM_STREAM],
        &output.replace("protocol: TCP", "protocol: UDP"),
        6,
    );
}

// ---------------------------------------------------------------------------------------------
// Failure cases: one per file in testdata/errors/
// ---------------------------------------------------------------------------------------------

/// A file of `testdata/errors/` and the environment its first comment line asks for.
struct ErrorCase {
    file: &'static str,
    env: &'static [(&'static str, &'static str)],
}

impl ErrorCase {
    fn path(&self) -> String {
        format!("testdata/errors/{}", self.file)
    }

    fn run(&self, extra_args: &[&str]) -> Output {
        command(&["generate", &self.path()], self.env)
            .args(extra_args)
            .output()
    }
}

fn error_case(file: &str) -> &'static ErrorCase {
    ERROR_CASES
        .iter()
        .find(|case| case.file == file)
        .expect("listed in ERROR_CASES")
}

/// Exit 1, empty stdout, no secret on stderr, and stderr as in the case's snapshot.
fn check_error_case(file: &str) {
    let case = error_case(file);
    let out = case.run(&[]);
    assert_failed(&out);
    let stderr = stderr(&out);
    assert_no_secret_leaks(&stderr, &read(&case.path()));
    let stem = file.trim_end_matches(".yaml").replace('-', "_");
    insta::assert_snapshot!(format!("error_{stem}"), stderr);
}

/// Declares `ERROR_CASES` and one test per case.
macro_rules! error_cases {
    ($($test:ident: $file:literal $(, $key:literal = $value:literal)*;)+) => {
        const ERROR_CASES: &[ErrorCase] = &[
            $(ErrorCase { file: $file, env: &[$(($key, $value)),*] }),+
        ];
        $(
            #[test]
            fn $test() {
                check_error_case($file);
            }
        )+
    };
}

error_cases! {
    missing_key_names_key_and_field: "01-missing-key.yaml";
    unknown_path_is_not_found: "02-unknown-path.yaml";
    unknown_modifier_is_invalid: "03-invalid-modifier.yaml";
    empty_modifier_stage_is_invalid: "04-empty-modifier-stage.yaml";
    json_parse_of_non_json_fails: "05-jsonparse-invalid-json.yaml";
    yaml_parse_of_invalid_yaml_fails: "06-yamlparse-invalid.yaml";
    json_path_to_missing_field_fails: "07-jsonpath-missing-field.yaml";
    malformed_json_path_is_a_parse_error: "08-jsonpath-syntax.yaml";
    indent_with_non_integer_level_fails: "09-indent-bad-param.yaml";
    sha256sum_of_map_fails: "10-sha256sum-on-map.yaml";
    base64encode_of_map_fails: "11-base64encode-on-map.yaml";
    base64decode_of_invalid_base64_fails: "12-base64decode-invalid.yaml";
    remove_missing_on_deployment_fails: "13-remove-missing-on-deployment.yaml";
    unknown_inline_version_is_not_found: "14-unknown-version.yaml";
    yaml_syntax_error_names_file_and_line: "15-yaml-syntax-error.yaml";
    invalid_document_separator_fails: "16-invalid-separator.yaml";
    list_document_is_rejected: "17-list-document.yaml";
    generic_placeholders_with_empty_path_are_missing: "18-generic-without-path-value.yaml";
    missing_key_in_base64_secret_value_names_placeholder: "19-secret-base64-missing-key.yaml";
    missing_key_in_configmap_block_names_field: "20-configmap-missing-key.yaml";
    errors_of_all_documents_are_reported_together: "21-several-errors-two-documents.yaml";
    missing_key_in_list_names_element: "22-missing-key-in-list.yaml";
    unsupported_kv_version_fails: "23-kv-version-invalid.yaml";
    path_outside_allow_list_is_disallowed: "24-path-disallowed.yaml",
        "AVP_PATH_VALIDATION" = r"^secret/data/(app|db)$";
    json_parse_error_does_not_echo_value: "25-jsonparse-error-must-not-echo-value.yaml";
    error_in_anchor_is_reported_once: "26-duplicate-error-in-anchor.yaml";
    missing_annotation_path_is_not_found: "27-annotation-path-not-found.yaml";
    missing_secret_version_is_not_found: "28-secret-version-not-found.yaml";
    invalid_path_validation_regex_fails: "29-invalid-path-validation-regex.yaml",
        "AVP_PATH_VALIDATION" = r"^\/(?!\/)(.*?)";
    input_of_only_comments_and_separators_is_empty: "30-empty-input.yaml";
    scalar_document_is_rejected: "31-scalar-document.yaml";
    missing_generic_key_fails: "32-generic-missing-key.yaml";
    remove_missing_keeps_backend_errors: "33-remove-missing-keeps-backend-errors.yaml";
    missing_key_is_reported_before_modifier_errors: "34-missing-key-with-modifier.yaml";
    missing_key_in_nested_list_fails: "35-missing-key-in-nested-list.yaml";
}

#[test]
fn every_error_fixture_has_a_case_with_its_environment() {
    let mut fixtures: Vec<String> =
        std::fs::read_dir(Path::new(CRATE_ROOT).join("testdata/errors"))
            .expect("cannot list testdata/errors")
            .map(|entry| entry.expect("cannot list testdata/errors").file_name())
            .map(|name| name.into_string().expect("UTF-8 file name"))
            .collect();
    fixtures.sort();
    let cases: Vec<&str> = ERROR_CASES.iter().map(|case| case.file).collect();
    assert_eq!(fixtures, cases, "testdata/errors/ and ERROR_CASES differ");
    assert!(cases.len() >= 35);

    for case in ERROR_CASES {
        let header = read(&case.path())
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned();
        assert_eq!(
            header.contains("Env: base only"),
            case.env.is_empty(),
            "{}: environment does not match its first line: {header}",
            case.file
        );
        for (key, value) in case.env {
            assert!(
                header.contains(&format!("{key}='{value}'")),
                "{}: {key}={value} is not what its first line asks for: {header}",
                case.file
            );
        }
    }
}

#[test]
fn empty_input_is_allowed_with_allow_empty() {
    let out = error_case("30-empty-input.yaml").run(&["--allow-empty"]);
    assert_exit_code(&out, 0);
    assert_eq!(stdout(&out), "", "--allow-empty must print nothing");
}

// ---------------------------------------------------------------------------------------------
// No secret value on stderr
// ---------------------------------------------------------------------------------------------

/// The quoted strings of a JSON-looking text that are values, not keys. Works on broken JSON.
fn json_string_values(text: &str) -> Vec<&str> {
    let pieces: Vec<&str> = text.split('"').collect();
    (1..pieces.len())
        .step_by(2)
        .filter(|&i| {
            !pieces
                .get(i + 1)
                .is_some_and(|next| next.trim_start().starts_with(':'))
        })
        .map(|i| pieces[i])
        .collect()
}

/// Adds the texts of `value` that must never be printed: every string, trimmed too, each line of
/// a multi-line string and each string value inside a JSON-looking one. Keys (field names) are
/// not secret.
fn collect_secret_texts(value: &Value, texts: &mut BTreeSet<String>) {
    match value {
        Value::String(s) => {
            let mut candidates = vec![s.as_str(), s.trim()];
            candidates.extend(s.lines().map(str::trim));
            if s.trim_start().starts_with(['{', '[']) {
                candidates.extend(json_string_values(s));
            }
            texts.extend(
                candidates
                    .into_iter()
                    .filter(|t| t.len() >= 6)
                    .map(str::to_owned),
            );
        }
        Value::Mapping(map) => map
            .values()
            .for_each(|value| collect_secret_texts(value, texts)),
        Value::Sequence(items) => items
            .iter()
            .for_each(|value| collect_secret_texts(value, texts)),
        Value::Tagged(tagged) => collect_secret_texts(&tagged.value, texts),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

fn secret_texts() -> BTreeSet<String> {
    let values: Value = serde_yaml::from_str(&read("testdata/values.yaml")).expect("values.yaml");
    let mut texts = BTreeSet::new();
    collect_secret_texts(&values, &mut texts);
    texts
}

/// Fails if `stderr` holds any text of values.yaml, except text the input itself contains
/// (printing back a field name or placeholder is fine).
fn assert_no_secret_leaks(stderr: &str, input: &str) {
    let leaked: Vec<String> = secret_texts()
        .into_iter()
        .filter(|secret| !input.contains(secret.as_str()) && stderr.contains(secret.as_str()))
        .collect();
    assert!(
        leaked.is_empty(),
        "secret values on stderr: {leaked:?}\n{stderr}"
    );
}

#[test]
fn secret_texts_cover_whole_values_lines_and_json_strings() {
    let texts = secret_texts();
    for expected in [
        "p@ss: w#rd \"q\" 'x' s3cr3t-apppw-v2",
        "s3cr3t-bkp-pass with lead and trail spaces",
        "MIIBs3cr3tFAKEcertLINE1AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "operator: [Equal s3cr3t-yamlbad-06",
        "s3cr3t-JSONLEAK-25",
        "s3cr3t-flag-b",
        "s3cr3t-host-a.internal",
        "s3cr3t-nested-owner",
    ] {
        assert!(texts.contains(expected), "{expected:?} not collected");
    }
    assert!(!texts.contains("memory"), "JSON keys are not secret");
}

#[test]
fn verbose_failures_print_no_secret_values() {
    for case in ERROR_CASES {
        let out = case.run(&[VERBOSE]);
        assert_failed(&out);
        assert_no_secret_leaks(&stderr(&out), &read(&case.path()));
    }
}

// ---------------------------------------------------------------------------------------------
// Usage and other failures
// ---------------------------------------------------------------------------------------------

#[test]
fn no_arguments_prints_the_help_on_stdout_like_avp() {
    let out = run(&[], &[], None);
    assert_exit_code(&out, 0);
    assert!(
        stdout(&out).contains("Usage: secretsubst"),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).contains("generate"), "{}", stdout(&out));
    assert_eq!(stderr(&out), "");
}

#[test]
fn generate_without_path_is_a_usage_error() {
    let out = run(&["generate"], &[], None);
    assert_exit_code(&out, 2);
    assert_eq!(stdout(&out), "");
}

#[test]
fn version_prints_name_and_version() {
    let out = run(&["version"], &[], None);
    assert_exit_code(&out, 0);
    assert_eq!(
        stdout(&out),
        format!("secretsubst {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn unsupported_backend_type_is_rejected() {
    let out = run(
        &["generate", HELM_STREAM],
        &[("AVP_TYPE", "nonsense")],
        None,
    );
    assert_failed(&out);
    assert!(
        stderr(&out).contains(
            "Must provide a supported Vault Type, received nonsense (valid types: 1passwordconnect, awssecretsmanager, azurekeyvault, file, gcpsecretmanager, ibmsecretsmanager, kubernetessecret, sops, vault)"
        ),
        "{}",
        stderr(&out)
    );
}

#[test]
fn unset_backend_type_lists_the_valid_types() {
    let out = run(&["generate", HELM_STREAM], &[("AVP_TYPE", "")], None);
    assert_failed(&out);
    assert_eq!(
        stderr(&out),
        "error: Must provide a supported Vault Type, received nothing: AVP_TYPE is not set (valid types: 1passwordconnect, awssecretsmanager, azurekeyvault, file, gcpsecretmanager, ibmsecretsmanager, kubernetessecret, sops, vault)\n"
    );
}

#[test]
fn missing_input_path_is_named() {
    let missing = "testdata/apps/no-such-app.yaml";
    let out = run(&["generate", missing], &[], None);
    assert_failed(&out);
    assert!(stderr(&out).contains(missing), "{}", stderr(&out));
}

#[test]
fn directory_without_manifests_fails() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("README.md"), "# not a manifest\n").expect("write");
    let dir_arg = dir.path().to_str().expect("UTF-8 temp path");
    let out = run(&["generate", dir_arg], &[], None);
    assert_failed(&out);
    let expected = format!("no YAML or JSON files were found in {dir_arg}");
    assert!(stderr(&out).contains(&expected), "{}", stderr(&out));
}

#[test]
fn manifests_without_placeholders_need_no_backend() {
    let input = concat!(
        "# no placeholder here\n",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: plain\ndata:\n  mode: '0640'\n",
    );
    let out = Run::generate(input).output();
    assert_exit_code(&out, 0);
    assert_eq!(stdout(&out), input);
}

// ---------------------------------------------------------------------------------------------
// Each secret is fetched once
// ---------------------------------------------------------------------------------------------

/// Runs `generate --verbose-sensitive-output` on a 50-document file whose document `i` holds
/// `placeholder(i)`, checks the substitution succeeded, and returns stderr.
fn verbose_run_of_50_documents(placeholder: impl Fn(usize) -> &'static str) -> String {
    let stream: String = (0..50)
        .map(|i| {
            format!(
                "---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: s{i}\n\
                 stringData:\n  value: <path:{}>\n",
                placeholder(i)
            )
        })
        .collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("stream.yaml");
    std::fs::write(&file, stream).expect("write");
    let out = run(
        &["generate", file.to_str().expect("UTF-8 temp path"), VERBOSE],
        &[],
        None,
    );
    assert_exit_code(&out, 0);
    assert!(!stdout(&out).contains("<path:"), "placeholders left");
    stderr(&out)
}

#[test]
fn same_placeholder_in_50_documents_is_fetched_once() {
    let stderr = verbose_run_of_50_documents(|_| "secret/data/app#username");
    assert!(
        stderr.contains("placeholders: 50, unique secrets: 1, backend requests: 1"),
        "{stderr}"
    );
}

#[test]
fn each_distinct_path_is_fetched_once() {
    const PLACEHOLDERS: [&str; 6] = [
        "secret/data/app#username",
        "secret/data/db#username",
        "secret/data/ingress#host",
        "secret/data/app#api_token",
        "secret/data/db#password",
        "secret/data/ingress#basic_auth",
    ];
    let stderr = verbose_run_of_50_documents(|i| PLACEHOLDERS[i % PLACEHOLDERS.len()]);
    assert!(
        stderr.contains("placeholders: 50, unique secrets: 3, backend requests: 3"),
        "{stderr}"
    );
}

#[test]
fn json_surrogate_pair_escapes_are_kept_and_placeholders_next_to_them_replaced() {
    let input = "{\"kind\": \"A\", \"e\": \"\\ud83d\\ude00 <path:secret/data/app#username>\"}\n";
    let out = run(&["generate", "-"], &[], Some(input));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "{\"kind\": \"A\", \"e\": \"\\ud83d\\ude00 orders-svc-s3cr3t-appuser\"}\n"
    );
}
