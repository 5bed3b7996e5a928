//! SOPS through the real binary, on fixtures that the real Go sops made (testdata/sops/,
//! `regenerate.sh`): every store and rule decrypts to what `sops decrypt` printed
//! (testdata/sops/expected/), and every damaged or foreign file fails with the right error and
//! without a plaintext value in stderr.

mod support;

use std::path::Path;
use std::process::Output;

use secretsubst::manifest::tree::Tree;
use serde_yaml::Value;
use support::output::{assert_failure, assert_output, stderr, stdout};
use support::run::Run;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/sops");
const TEST_KEY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/testdata/sops/keys/test.agekey"
);
const OTHER_KEY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/testdata/sops/keys/other.agekey"
);

/// Plaintext values of the fixtures; none may reach stderr.
const PLAINTEXT: &[&str] = &[
    "correct-horse-battery-staple",
    "hunter2",
    "demo-app",
    "bottom",
];

/// `generate -` in testdata/sops with the sops backend and `env`; stderr never holds a plaintext.
fn run(input: &str, env: &[(&str, &str)]) -> Output {
    let out = Run::generate(input)
        .dir(DIR)
        .env("AVP_TYPE", "sops")
        .envs(env)
        .arg("--verbose-sensitive-output")
        .output();
    let err = stderr(&out);
    for value in PLAINTEXT {
        assert!(!err.contains(value), "stderr leaks {value:?}: {err}");
    }
    out
}

/// The top-level entries of what sops itself decrypted `name` to, as JSON values.
fn expected(name: &str) -> Vec<(String, serde_json::Value)> {
    let text = std::fs::read_to_string(Path::new(DIR).join("expected").join(name)).unwrap();
    if name.ends_with(".env") {
        return text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| {
                let (k, v) = l.split_once('=').unwrap();
                (
                    k.to_owned(),
                    serde_json::Value::String(v.replace("\\n", "\n")),
                )
            })
            .collect();
    }
    // sops indents JSON with tabs, which YAML does not allow.
    let parsed: serde_json::Value = if name.ends_with(".json") {
        serde_json::from_str(&text).unwrap()
    } else {
        serde_yaml::from_str(&text).unwrap()
    };
    let serde_json::Value::Object(map) = parsed else {
        panic!("{name}: not a map")
    };
    map.into_iter().collect()
}

/// Reads every top-level key of `name` through placeholders (typed injection keeps maps, lists,
/// numbers and booleans) and compares them with sops's own decryption. Null values count as
/// missing keys, as in AVP, so they are left out.
fn decrypts_as_sops_does(name: &str, key_file: &str) {
    decrypts_with(name, &[("SOPS_AGE_KEY_FILE", key_file)]);
}

/// [`decrypts_as_sops_does`] with the identities `env` names.
fn decrypts_with(name: &str, env: &[(&str, &str)]) {
    let entries: Vec<(String, serde_json::Value)> = expected(name)
        .into_iter()
        .filter(|(_, v)| !v.is_null())
        .collect();
    let mut input = String::from("kind: A\nv:\n");
    for (key, _) in &entries {
        input.push_str(&format!("  {key:?}: <path:{name}#{key}>\n"));
    }
    let out = run(&input, env);
    assert!(out.status.success(), "{name}: {}", stderr(&out));
    // Our own reader: a 23-digit number is beyond serde_yaml.
    let tree = Tree::parse(&stdout(&out)).unwrap().unwrap();
    let output = tree.to_value().unwrap().to_json();
    for (key, want) in &entries {
        let got = &output["v"][key.as_str()];
        assert!(same(got, want), "{name}: key {key}: {got} != {want}");
    }
}

/// Equal, numbers compared by value (sops writes a float as `1.2345678901234568e+22`).
fn same(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value as J;
    match (a, b) {
        (J::Number(x), J::Number(y)) => x.as_f64() == y.as_f64(),
        // Our reader keeps an integer beyond 64 bits as its text.
        (J::String(x), J::Number(y)) => x.parse::<f64>().ok() == y.as_f64(),
        (J::Array(x), J::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (J::Object(x), J::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

macro_rules! decrypts {
    ($($test:ident: $file:literal with $key:expr;)*) => {$(
        #[test]
        fn $test() {
            decrypts_as_sops_does($file, $key);
        }
    )*};
}

decrypts! {
    yaml_with_every_value_type_nested_maps_lists_and_comments: "basic.enc.yaml" with TEST_KEY;
    json_store: "basic.enc.json" with TEST_KEY;
    dotenv_store: "basic.enc.env" with TEST_KEY;
    encrypted_regex: "encrypted-regex.enc.yaml" with TEST_KEY;
    unencrypted_regex: "unencrypted-regex.enc.yaml" with TEST_KEY;
    encrypted_suffix: "encrypted-suffix.enc.yaml" with TEST_KEY;
    unencrypted_suffix: "unencrypted-suffix.enc.yaml" with TEST_KEY;
    mac_only_encrypted: "mac-only-encrypted.enc.yaml" with TEST_KEY;
    two_recipients_with_the_first_identity: "two-recipients.enc.yaml" with TEST_KEY;
    two_recipients_with_the_second_identity: "two-recipients.enc.yaml" with OTHER_KEY;
    a_file_for_another_identity_with_that_identity: "other-only.enc.yaml" with OTHER_KEY;
}

/// The first error line of a failed run.
fn error(input: &str, env: &[(&str, &str)]) -> String {
    let out = run(input, env);
    let err = assert_failure(&out, PLAINTEXT);
    err.lines()
        .find(|l| l.starts_with("error: "))
        .unwrap()
        .to_owned()
}

fn read(file: &str, key: &str) -> String {
    format!("kind: A\nx: <path:{file}#{key}>\n")
}

/// The error of reading `key` of `file` with the test identity.
fn read_error(file: &str, key: &str) -> String {
    error(&read(file, key), &[("SOPS_AGE_KEY_FILE", TEST_KEY)])
}

#[test]
fn a_file_for_an_identity_we_do_not_hold_names_its_recipients() {
    let stranger = std::fs::read_to_string(Path::new(DIR).join("keys/stranger.agekey")).unwrap();
    let public = stranger
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .unwrap()
        .trim()
        .to_owned();
    let err = read_error("stranger.enc.yaml", "app");
    assert_eq!(
        err,
        format!(
            "error: <stdin>: doc 1 (A): x: <path:stranger.enc.yaml#app>: sops: stranger.enc.yaml: no age identity matches the file's recipients {public} (identities from SOPS_AGE_KEY_FILE {TEST_KEY})"
        )
    );
    assert!(!err.contains("AGE-SECRET-KEY"), "{err}");
}

#[test]
fn tampered_files_are_errors_never_partial_reads() {
    for (file, key, reason) in [
        ("tampered-mac.enc.yaml", "app", "MAC mismatch"),
        ("tampered-mac-ciphertext.enc.yaml", "app", "MAC mismatch"),
        ("plain-value-changed.enc.yaml", "app", "MAC mismatch"),
        ("mac-only-plain-changed.enc.yaml", "public_url", ""),
        ("tampered-value.enc.yaml", "app", "value at "),
        ("tampered-swapped.enc.yaml", "app", "value at "),
    ] {
        let out = run(&read(file, key), &[("SOPS_AGE_KEY_FILE", TEST_KEY)]);
        if reason.is_empty() {
            // mac_only_encrypted: a value in the clear is not covered, so the change reads.
            assert_output(&out, "kind: A\nx: https://attacker.invalid\n");
            continue;
        }
        let err = assert_failure(&out, PLAINTEXT);
        assert!(
            err.contains(&format!("sops: {file}: {reason}")),
            "{file}: {err}"
        );
    }
}

#[test]
fn key_types_we_do_not_decrypt_are_named() {
    assert_eq!(
        read_error("pgp-only.enc.yaml", "app"),
        "error: <stdin>: doc 1 (A): x: <path:pgp-only.enc.yaml#app>: sops: pgp-only.enc.yaml: the data key is encrypted only for PGP keys, which secretsubst does not decrypt (only age)"
    );
    assert!(
        read_error("kms-only.enc.yaml", "app")
        .ends_with("the data key is encrypted only for AWS KMS keys, which secretsubst does not decrypt (only age)")
    );
}

#[test]
fn an_ordinary_file_is_not_a_sops_file() {
    assert!(
        read_error("not-sops.yaml", "app")
            .ends_with("sops: not-sops.yaml: not a SOPS file (no sops metadata)")
    );
}

#[test]
fn paths_may_not_leave_the_working_directory() {
    for (path, why) in [
        (
            "../sops/basic.enc.yaml",
            "a path with .. may leave the working directory",
        ),
        (
            "/etc/passwd",
            "an absolute path leaves the working directory",
        ),
    ] {
        let err = error(&read(path, "app"), &[("SOPS_AGE_KEY_FILE", TEST_KEY)]);
        assert!(
            err.ends_with(&format!(
                "sops: {path}: {why} (set AVP_SOPS_ALLOW_OUTSIDE=true to allow it)"
            )),
            "{err}"
        );
    }
    let out = run(
        &read("../sops/basic.enc.yaml", "deep"),
        &[
            ("SOPS_AGE_KEY_FILE", TEST_KEY),
            ("AVP_SOPS_ALLOW_OUTSIDE", "true"),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn identities_come_from_the_key_text_or_the_default_file() {
    let key = std::fs::read_to_string(TEST_KEY).unwrap();
    let want = "kind: A\nx: bottom\n";
    let input = "kind: A\nx: <path:basic.enc.yaml#deep | jsonPath {.level1.level2.level3}>\n";
    assert_output(&run(input, &[("SOPS_AGE_KEY", &key)]), want);
    let config = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(config.path().join("sops/age")).unwrap();
    std::fs::write(config.path().join("sops/age/keys.txt"), &key).unwrap();
    let dir = config.path().to_str().unwrap();
    assert_output(&run(input, &[("XDG_CONFIG_HOME", dir)]), want);
}

#[test]
fn an_ssh_identity_opens_a_file_for_its_ssh_recipient() {
    let key = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/sops/keys/test_ssh_ed25519"
    );
    decrypts_with(
        "ssh-recipient.enc.yaml",
        &[("SOPS_AGE_SSH_PRIVATE_KEY_FILE", key)],
    );
}

#[test]
fn each_file_is_decrypted_once_however_many_placeholders_read_it() {
    let input = "kind: A\na: <path:basic.enc.yaml#deep>\nb: <path:basic.enc.yaml#tags>\nc: <path:basic.enc.json#service>\n";
    let out = run(input, &[("SOPS_AGE_KEY_FILE", TEST_KEY)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("unique secrets: 2, backend requests: 2"),
        "{}",
        stderr(&out)
    );
}

/// The values file, for the placeholders inside encrypted manifests.
const VALUES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/values.yaml");

/// `generate FILE` with the values-file backend, decrypting SOPS manifests with `key` (none:
/// the setting unset).
fn generate_manifests(file: &Path, key: Option<&str>) -> Output {
    let run = Run::new(["generate"])
        .arg(file)
        .env("AVP_TYPE", "file")
        .env("AVP_VALUES_FILE", VALUES);
    match key {
        Some(key) => run
            .env("AVP_SOPS_MANIFESTS", "decrypt")
            .env("SOPS_AGE_KEY_FILE", key)
            .output(),
        None => run.output(),
    }
}

/// The KSOPS way: an encrypted Secret in the input, decrypted in place with
/// `AVP_SOPS_MANIFESTS=decrypt`; its placeholders are then substituted from the values file.
#[test]
fn an_encrypted_manifest_is_decrypted_in_place_and_its_placeholders_substituted() {
    let file = Path::new(DIR).join("ksops-secret.enc.yaml");
    let out = generate_manifests(&file, Some(TEST_KEY));
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        !text.contains("ENC[") && !text.contains("\nsops:"),
        "{text}"
    );
    assert!(!text.contains("<path:"), "{text}");
    // Only the encrypted scalars changed: every other line is the encrypted file's.
    let encrypted = std::fs::read_to_string(&file).unwrap();
    let kept: Vec<&str> = encrypted
        .lines()
        .take_while(|l| !l.starts_with("sops:"))
        .filter(|l| !l.contains("ENC["))
        .collect();
    let out_lines: Vec<&str> = text.lines().filter(|l| kept.contains(l)).collect();
    assert_eq!(out_lines, kept);
    // And the values are sops's own decryption, placeholders filled.
    let got: Value = serde_yaml::from_str(&text).unwrap();
    let want: Value = serde_yaml::from_str(
        &std::fs::read_to_string(Path::new(DIR).join("expected/ksops-secret.enc.yaml")).unwrap(),
    )
    .unwrap();
    for section in ["data", "stringData", "metadata", "type"] {
        let (got, want) = (&got[section], &want[section]);
        if let (Value::Mapping(g), Value::Mapping(w)) = (got, want) {
            for (k, v) in w {
                match v.as_str() {
                    Some(s) if s.contains("<path:") => {
                        assert!(!g[k].as_str().unwrap().contains("<path:"));
                    }
                    _ => assert_eq!(&g[k], v, "{section}.{k:?}"),
                }
            }
        } else {
            assert_eq!(got, want, "{section}");
        }
    }
}

#[test]
fn without_the_setting_encrypted_manifests_pass_through_untouched() {
    let file = Path::new(DIR).join("ksops-secret.enc.yaml");
    let encrypted = std::fs::read_to_string(&file).unwrap();
    let out = generate_manifests(&file, None);
    assert_output(&out, &encrypted);
}

#[test]
fn an_encrypted_manifest_that_does_not_decrypt_names_file_and_document() {
    let file = Path::new(DIR).join("ksops-secret.enc.yaml");
    let out = generate_manifests(&file, Some(OTHER_KEY));
    let err = assert_failure(&out, PLAINTEXT);
    assert!(
        err.starts_with(&format!(
            "error: {}: doc 1: sops: no age identity matches the file's recipients age1",
            file.display()
        )),
        "{err}"
    );
}

/// A manifest encrypted whole, comments too: everything decrypts in place, comment lines and
/// the comment sops writes as a list item included, and the `sops` block goes.
#[test]
fn a_wholly_encrypted_manifest_decrypts_with_its_comments() {
    let file = Path::new(DIR).join("configmap.enc.yaml");
    let out = generate_manifests(&file, Some(TEST_KEY));
    let plain = std::fs::read_to_string(Path::new(DIR).join("expected/configmap.enc.yaml"))
        .unwrap()
        .replace(
            "<path:secret/data/app#username>",
            "orders-svc-s3cr3t-appuser",
        );
    assert_output(&out, &plain);
}

/// A `sops` profile beside Vault (the default backend) in one run.
#[test]
fn a_sops_profile_works_beside_vault() {
    use support::vault::{Policy, VaultServer};
    let vault = VaultServer::builder()
        .kv2("secret")
        .put(
            "secret/db",
            serde_json::json!({"password": "vault-pw-s3cr3t"}),
        )
        .token("root-s3cr3t", Policy::Root)
        .start();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("settings.yaml");
    std::fs::write(
        &config,
        format!(
            "AVP_TYPE: vault\nVAULT_ADDR: {}\nAVP_AUTH_TYPE: token\nVAULT_TOKEN: root-s3cr3t\nbackends:\n  git:\n    AVP_TYPE: sops\n    SOPS_AGE_KEY_FILE: {TEST_KEY}\n",
            vault.addr()
        ),
    )
    .unwrap();
    let out = Run::new(["generate", "--verbose-sensitive-output", "-c"])
        .arg(&config)
        .arg("-")
        .dir(DIR)
        .stdin(
            "kind: A\ndb: <path:secret/data/db#password>\ndeep: <path:git:basic.enc.yaml#deep>\n",
        )
        .output();
    assert_output(
        &out,
        "kind: A\ndb: vault-pw-s3cr3t\ndeep: {\"level1\":{\"level2\":{\"level3\":\"bottom\"}}}\n",
    );
    let err = stderr(&out);
    assert!(
        err.contains("sops (git): unique secrets: 1, backend requests: 1"),
        "{err}"
    );
    assert!(
        err.contains("vault (default): unique secrets: 1, backend requests: 1"),
        "{err}"
    );
    assert_eq!(vault.count("GET", "secret/data/"), 1);
}

#[test]
fn a_pinned_version_of_a_sops_file_is_an_error() {
    assert!(
        error(
            "kind: A\nx: <path:basic.enc.yaml#deep#2>\n",
            &[("SOPS_AGE_KEY_FILE", TEST_KEY)]
        )
        .ends_with("sops: basic.enc.yaml: a SOPS file has no versions (got 2)")
    );
}

#[test]
fn an_unknown_manifests_mode_is_an_error() {
    let out = Run::generate("kind: A\n")
        .env("AVP_TYPE", "sops")
        .env("AVP_SOPS_MANIFESTS", "yes")
        .output();
    assert_eq!(
        assert_failure(&out, &[]),
        "error: AVP_SOPS_MANIFESTS must be decrypt or unset, got \"yes\"\n"
    );
}

/// A SOPS file of two documents (one MAC over both), and beside it in the same stream a
/// document of another SOPS file: each file is decrypted as a whole.
#[test]
fn documents_of_one_sops_file_decrypt_together() {
    let two = std::fs::read_to_string(Path::new(DIR).join("two-documents.enc.yaml")).unwrap();
    let other = std::fs::read_to_string(Path::new(DIR).join("configmap.enc.yaml")).unwrap();
    let out = Run::generate(&format!("{two}---\n{other}"))
        .env("AVP_TYPE", "file")
        .env("AVP_VALUES_FILE", VALUES)
        .env("AVP_SOPS_MANIFESTS", "decrypt")
        .env("SOPS_AGE_KEY_FILE", TEST_KEY)
        .output();
    let want =
        |name: &str| std::fs::read_to_string(Path::new(DIR).join("expected").join(name)).unwrap();
    let expected = format!(
        "{}---\n{}",
        want("two-documents.enc.yaml"),
        want("configmap.enc.yaml")
    )
    .replace(
        "<path:secret/data/app#username>",
        "orders-svc-s3cr3t-appuser",
    );
    assert_output(&out, &expected);
}

#[test]
fn a_symbolic_link_out_of_the_working_directory_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let inside = root.path().join("app");
    std::fs::create_dir(&inside).unwrap();
    std::fs::copy(
        Path::new(DIR).join("basic.enc.yaml"),
        root.path().join("outside.enc.yaml"),
    )
    .unwrap();
    std::os::unix::fs::symlink("../outside.enc.yaml", inside.join("link.enc.yaml")).unwrap();
    let out = Run::generate(&read("link.enc.yaml", "deep"))
        .dir(&inside)
        .env("AVP_TYPE", "sops")
        .env("SOPS_AGE_KEY_FILE", TEST_KEY)
        .output();
    let err = assert_failure(&out, PLAINTEXT);
    assert!(
        err.ends_with("sops: link.enc.yaml: the path leads out of the working directory (set AVP_SOPS_ALLOW_OUTSIDE=true to allow it)\n"),
        "{err}"
    );
}
