//! Several backends in one run: named profiles from the `-c` file's `backends` map, selected by
//! a placeholder's `NAME:` prefix or the `avp.kubernetes.io/backend` annotation, each built
//! only when used, with its own settings, and named in errors and counters.

mod support;

use std::path::PathBuf;
use std::process::Output;

use serde_json::json;
use support::output::{assert_failure, assert_output, stderr};
use support::run::Run;
use support::vault::{Policy, VaultServer};

const ROOT: &str = "root-token-s3cr3t";
const VALUES: &str = "app:\n  user: file-user-s3cr3t\n\"aws-prod:literal\":\n  k: colon-s3cr3t\n";
const LEAKS: &[&str] = &[
    "file-user-s3cr3t",
    "vault-pw-s3cr3t",
    "aws-key-s3cr3t",
    "colon-s3cr3t",
    ROOT,
];

/// A temporary directory with the values file and a settings file.
struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("values.yaml"), VALUES).unwrap();
        Setup { dir }
    }

    fn values(&self) -> String {
        self.dir.path().join("values.yaml").display().to_string()
    }

    /// Writes the `-c` file (`{values}` stands for the values file's path).
    fn config(&self, text: &str) -> PathBuf {
        let path = self.dir.path().join("settings.yaml");
        std::fs::write(&path, text.replace("{values}", &self.values())).unwrap();
        path
    }

    /// `generate -c settings.yaml -`, verbose, with `env`; no value or token in stderr.
    fn run(&self, config: &str, env: &[(&str, &str)], input: &str) -> Output {
        let out = Run::new(["generate", "--verbose-sensitive-output", "-c"])
            .arg(self.config(config))
            .arg("-")
            .stdin(input)
            .envs(env)
            .output();
        let err = stderr(&out);
        for leak in LEAKS {
            assert!(!err.contains(leak), "stderr leaks {leak:?}: {err}");
        }
        out
    }
}

fn errors(out: &Output) -> Vec<String> {
    support::output::error_lines(out, LEAKS)
}

fn vault() -> VaultServer {
    VaultServer::builder()
        .kv2("secret")
        .put("secret/db", json!({"password": "vault-pw-s3cr3t"}))
        .token(ROOT, Policy::Root)
        .token("reader", Policy::Read(vec!["secret/data/other".into()]))
        .start()
}

fn aws_secret() -> String {
    let name = format!("profiles-{}/api", std::process::id());
    support::moto::create(
        "us-east-1",
        &name,
        Some(r#"{"key": "aws-key-s3cr3t"}"#),
        None,
    );
    name
}

/// Three profiles: Vault as the default, AWS and the values file by name.
fn three_profiles(vault: &VaultServer) -> String {
    format!(
        "AVP_TYPE: vault\nVAULT_ADDR: {}\nAVP_AUTH_TYPE: token\nVAULT_TOKEN: {ROOT}\nbackends:\n  aws-prod:\n    AVP_TYPE: awssecretsmanager\n    AWS_REGION: us-east-1\n    AWS_ENDPOINT_URL: {}\n    AWS_ACCESS_KEY_ID: testing\n    AWS_SECRET_ACCESS_KEY: testing\n  team-file:\n    AVP_TYPE: file\n    AVP_VALUES_FILE: \"{{values}}\"\n",
        vault.addr(),
        support::moto::url()
    )
}

#[test]
fn three_backends_resolve_in_one_manifest_by_prefix_and_annotation() {
    let setup = Setup::new();
    let vault = vault();
    let api = aws_secret();
    let input = format!(
        "kind: Secret\nmetadata:\n  name: mixed\nstringData:\n  db: <path:secret/data/db#password>\n  api: <path:aws-prod:{api}#key>\n  user: <path:team-file:app#user>\n---\nkind: Secret\nmetadata:\n  name: annotated\n  annotations:\n    avp.kubernetes.io/backend: team-file\n    avp.kubernetes.io/path: app\nstringData:\n  user: <user>\n  inline: <path:app#user>\n  db: <path:default:secret/data/db#password>\n"
    );
    let out = setup.run(
        &three_profiles(&vault),
        &[("AWS_EC2_METADATA_DISABLED", "true")],
        &input,
    );
    assert_output(
        &out,
        "kind: Secret\nmetadata:\n  name: mixed\nstringData:\n  db: vault-pw-s3cr3t\n  api: aws-key-s3cr3t\n  user: file-user-s3cr3t\n---\nkind: Secret\nmetadata:\n  name: annotated\n  annotations:\n    avp.kubernetes.io/backend: team-file\n    avp.kubernetes.io/path: app\nstringData:\n  user: file-user-s3cr3t\n  inline: file-user-s3cr3t\n  db: vault-pw-s3cr3t\n",
    );
    // Vault saw its one secret once, and nothing of the others.
    assert_eq!(vault.count("GET", "secret/data/"), 1);
    assert_eq!(vault.count("GET", "secret/data/db"), 1);
    let err = stderr(&out);
    for counters in [
        "vault (default): unique secrets: 1, backend requests: 1",
        "awssecretsmanager (aws-prod): unique secrets: 1, backend requests: 1",
        "file (team-file): unique secrets: 1, backend requests: 1",
        "unique secrets: 3, backend requests: 3",
    ] {
        assert!(err.contains(counters), "{counters}: {err}");
    }
}

#[test]
fn an_unused_profile_is_never_built() {
    let setup = Setup::new();
    let config = "AVP_TYPE: file\nAVP_VALUES_FILE: \"{values}\"\nbackends:\n  broken:\n    AVP_TYPE: vault\n    VAULT_ADDR: not a url\n    AVP_AUTH_TYPE: nonsense\n  unknown-type:\n    AVP_TYPE: nosuchbackend\n";
    let out = setup.run(config, &[], "kind: A\nx: <path:app#user>\n");
    assert_output(&out, "kind: A\nx: file-user-s3cr3t\n");
}

#[test]
fn a_run_whose_placeholders_all_name_profiles_needs_no_default_backend() {
    let setup = Setup::new();
    let config = "backends:\n  team-file:\n    AVP_TYPE: file\n    AVP_VALUES_FILE: \"{values}\"\n";
    let out = setup.run(config, &[], "kind: A\nx: <path:team-file:app#user>\n");
    assert_output(&out, "kind: A\nx: file-user-s3cr3t\n");
}

#[test]
fn the_default_backend_is_still_required_when_used() {
    let setup = Setup::new();
    let config = "backends:\n  team-file:\n    AVP_TYPE: file\n    AVP_VALUES_FILE: \"{values}\"\n";
    let out = setup.run(config, &[], "kind: A\nx: <path:app#user>\n");
    let err = errors(&out).join("\n");
    assert!(
        err.contains("error: backend profile default: Must provide a supported Vault Type, received nothing: AVP_TYPE is not set (valid types: "),
        "{err}"
    );
}

#[test]
fn a_prefix_that_names_no_profile_is_part_of_the_path() {
    let setup = Setup::new();
    // Without profiles, `aws-prod:` is part of the path, exactly as in AVP.
    let config = "AVP_TYPE: file\nAVP_VALUES_FILE: \"{values}\"\n";
    let out = setup.run(config, &[], "kind: A\nx: <path:aws-prod:literal#k>\n");
    assert_output(&out, "kind: A\nx: colon-s3cr3t\n");
    // With other profiles configured, too.
    let config = "AVP_TYPE: file\nAVP_VALUES_FILE: \"{values}\"\nbackends:\n  team-file:\n    AVP_TYPE: file\n    AVP_VALUES_FILE: \"{values}\"\n";
    let out = setup.run(config, &[], "kind: A\nx: <path:aws-prod:literal#k>\n");
    assert_output(&out, "kind: A\nx: colon-s3cr3t\n");
}

#[test]
fn an_unknown_profile_in_the_annotation_lists_the_configured_ones() {
    let setup = Setup::new();
    let config = "AVP_TYPE: file\nAVP_VALUES_FILE: \"{values}\"\nbackends:\n  team-file:\n    AVP_TYPE: file\n    AVP_VALUES_FILE: \"{values}\"\n  aws-prod:\n    AVP_TYPE: awssecretsmanager\n";
    let input = "kind: Secret\nmetadata:\n  name: s\n  annotations:\n    avp.kubernetes.io/backend: vault-prod\nstringData:\n  x: <path:app#user>\n";
    let out = setup.run(config, &[], input);
    assert_eq!(
        errors(&out),
        [
            "error: <stdin>: doc 1 (Secret/s): metadata.annotations['avp.kubernetes.io/backend']: unknown backend profile \"vault-prod\" (configured: default, aws-prod, team-file)"
        ]
    );
}

#[test]
fn profile_names_follow_the_rules() {
    let setup = Setup::new();
    for (name, problem) in [
        (
            "Aws_Prod",
            "\"Aws_Prod\" is not a valid profile name: use lower-case letters, digits and '-', starting and ending with a letter or digit, at most 63 characters",
        ),
        (
            "default",
            "the profile name \"default\" is reserved: it names the default backend (the flat settings)",
        ),
        (
            "arn",
            "the profile name \"arn\" is reserved: AWS ARNs start with arn:",
        ),
    ] {
        let config = format!("AVP_TYPE: file\nbackends:\n  {name}:\n    AVP_TYPE: file\n");
        let out = setup.run(&config, &[], "kind: A\n");
        let err = assert_failure(&out, LEAKS);
        let path = setup.dir.path().join("settings.yaml");
        assert_eq!(
            err,
            format!("error: config file {}: {problem}\n", path.display())
        );
    }
}

#[test]
fn a_profile_needs_a_type_and_a_map_of_settings() {
    let setup = Setup::new();
    let path = setup.dir.path().join("settings.yaml");
    for (config, problem) in [
        (
            "backends:\n  p:\n    AWS_REGION: x\n",
            "backends.p: AVP_TYPE is required",
        ),
        (
            "backends:\n  p: file\n",
            "backends.p must be a map of settings, found a string",
        ),
        (
            "backends: [p]\n",
            "backends must map profile names to their settings, found a list",
        ),
    ] {
        let out = setup.run(config, &[], "kind: A\n");
        let err = assert_failure(&out, LEAKS);
        assert_eq!(
            err,
            format!("error: config file {}: {problem}\n", path.display())
        );
    }
    let out = setup.run(
        "backends:\n  p:\n    AVP_TYPE: file\n    NESTED: {a: 1}\n",
        &[],
        "kind: A\n",
    );
    assert_eq!(
        errors(&out),
        [format!(
            "error: config file {}: backends.p: setting \"NESTED\" must be a string, number or boolean, found a map",
            path.display()
        )]
    );
}

#[test]
fn errors_name_the_profile() {
    let setup = Setup::new();
    let vault = vault();
    let config = format!(
        "AVP_TYPE: file\nAVP_VALUES_FILE: \"{{values}}\"\nbackends:\n  prod:\n    AVP_TYPE: vault\n    VAULT_ADDR: {}\n    AVP_AUTH_TYPE: token\n    VAULT_TOKEN: reader\n",
        vault.addr()
    );
    let input = "kind: Secret\nmetadata:\n  name: s\nstringData:\n  x: <path:prod:secret/data/db#password>\n  y: <path:app#nope>\n";
    let out = setup.run(&config, &[], input);
    let err = assert_failure(&out, LEAKS);
    assert_eq!(
        err.lines()
            .filter(|l| l.starts_with("error: "))
            .collect::<Vec<_>>(),
        [
            "error: <stdin>: doc 1 (Secret/s): stringData.x: <path:prod:secret/data/db#password>: vault (prod): 403 permission denied: secret/data/db (check the policy of the identity secretsubst logs in as)",
            "error: <stdin>: doc 1 (Secret/s): stringData.y: <path:app#nope>: missing value: key \"nope\" not found in app",
        ]
    );
}

#[test]
fn a_profile_that_cannot_be_set_up_is_reported_once_beside_the_others_errors() {
    let setup = Setup::new();
    let config = "AVP_TYPE: file\nAVP_VALUES_FILE: \"{values}\"\nbackends:\n  prod:\n    AVP_TYPE: vault\n    VAULT_ADDR: http://127.0.0.1:1\n    AVP_AUTH_TYPE: userpass\n";
    let input = "kind: A\nx: <path:prod:secret/data/a#k>\ny: <path:prod:secret/data/b#k>\nz: <path:app#nope>\n";
    let out = setup.run(config, &[], input);
    let err = assert_failure(&out, LEAKS);
    assert_eq!(
        err.lines()
            .filter(|l| l.starts_with("error: "))
            .collect::<Vec<_>>(),
        [
            "error: <stdin>: doc 1 (A): z: <path:app#nope>: missing value: key \"nope\" not found in app",
            "error: vault (prod): AVP_USERNAME and AVP_PASSWORD for userpass authentication cannot be empty",
        ]
    );
}

#[test]
fn a_profile_does_not_inherit_the_default_backends_settings() {
    let setup = Setup::new();
    let vault = vault();
    // The default's VAULT_ADDR and token are not the profile's: it has AVP's defaults.
    let config = format!(
        "AVP_TYPE: vault\nVAULT_ADDR: {}\nAVP_AUTH_TYPE: token\nVAULT_TOKEN: {ROOT}\nbackends:\n  other:\n    AVP_TYPE: vault\n",
        vault.addr()
    );
    let out = setup.run(
        &config,
        &[],
        "kind: A\nx: <path:other:secret/data/db#password>\n",
    );
    assert_eq!(
        errors(&out),
        [
            "error: vault (other): Must provide a supported Authentication Type, received nothing: AVP_AUTH_TYPE is not set (valid types: approle, cert, github, k8s, token, userpass)"
        ]
    );
    assert_eq!(vault.count("GET", ""), 0);
}

#[test]
fn the_same_path_in_two_profiles_is_two_secrets() {
    let setup = Setup::new();
    let config = "AVP_TYPE: file\nAVP_VALUES_FILE: \"{values}\"\nbackends:\n  team-file:\n    AVP_TYPE: file\n    AVP_VALUES_FILE: \"{values}\"\n";
    let input =
        "kind: A\nx: <path:app#user>\ny: <path:team-file:app#user>\nz: <path:default:app#user>\n";
    let out = setup.run(config, &[], input);
    assert_output(
        &out,
        "kind: A\nx: file-user-s3cr3t\ny: file-user-s3cr3t\nz: file-user-s3cr3t\n",
    );
    assert!(
        stderr(&out).contains("unique secrets: 2, backend requests: 2"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn profile_options_go_only_to_backends_that_declare_them() {
    let setup = Setup::new();
    let vault = vault();
    let config = format!(
        "AVP_TYPE: file\nAVP_VALUES_FILE: \"{{values}}\"\nbackends:\n  prod:\n    AVP_TYPE: vault\n    VAULT_ADDR: {}\n    AVP_AUTH_TYPE: token\n    VAULT_TOKEN: {ROOT}\n",
        vault.addr()
    );
    // kv-version is Vault's option: the values file ignores it; Vault reads KV v2 without
    // detecting the mount.
    let input = "kind: A\nmetadata:\n  annotations:\n    avp.kubernetes.io/kv-version: \"2\"\nx: <path:app#user>\ny: <path:prod:secret/data/db#password>\n";
    let out = setup.run(&config, &[], input);
    assert_output(
        &out,
        &input
            .replace("<path:app#user>", "file-user-s3cr3t")
            .replace("<path:prod:secret/data/db#password>", "vault-pw-s3cr3t"),
    );
    assert_eq!(vault.count("GET", "sys/internal/ui/mounts"), 0);
}

#[test]
fn the_path_annotation_may_name_a_profile() {
    let setup = Setup::new();
    let config = "backends:\n  team-file:\n    AVP_TYPE: file\n    AVP_VALUES_FILE: \"{values}\"\n";
    let input = "kind: Secret\nmetadata:\n  name: s\n  annotations:\n    avp.kubernetes.io/path: team-file:app\nstringData:\n  user: <user>\n  nope: <nope>\n";
    let out = setup.run(config, &[], input);
    assert_eq!(
        errors(&out),
        [
            "error: <stdin>: doc 1 (Secret/s): stringData.nope: <nope>: missing value: key \"nope\" not found in app"
        ]
    );
    let out = setup.run(config, &[], &input.replace("  nope: <nope>\n", ""));
    assert_output(
        &out,
        "kind: Secret\nmetadata:\n  name: s\n  annotations:\n    avp.kubernetes.io/path: team-file:app\nstringData:\n  user: file-user-s3cr3t\n",
    );
}

#[test]
fn each_profile_has_its_own_token_cache_entry() {
    let setup = Setup::new();
    let vault = VaultServer::builder()
        .kv2("secret")
        .put("secret/db", json!({"password": "vault-pw-s3cr3t"}))
        .approle("approle", "role-1", "secret-id-s3cr3t", Policy::Root)
        .start();
    let login = |profile: &str| {
        format!(
            "  {profile}:\n    AVP_TYPE: vault\n    VAULT_ADDR: {}\n    AVP_AUTH_TYPE: approle\n    AVP_ROLE_ID: role-1\n    AVP_SECRET_ID: secret-id-s3cr3t\n",
            vault.addr()
        )
    };
    let config = format!("backends:\n{}{}", login("one"), login("two"));
    let input =
        "kind: A\nx: <path:one:secret/data/db#password>\ny: <path:two:secret/data/db#password>\n";
    let home = tempfile::tempdir().unwrap();
    let run = || {
        Run::new(["generate", "-c"])
            .arg(setup.config(&config))
            .arg("-")
            .stdin(input)
            .home(home.path())
            .output()
    };
    let want = "kind: A\nx: vault-pw-s3cr3t\ny: vault-pw-s3cr3t\n";
    assert_output(&run(), want);
    assert_eq!(vault.count("POST", "auth/approle/login"), 2);
    let cached = std::fs::read_dir(home.path().join(".secretsubst"))
        .unwrap()
        .count();
    assert_eq!(cached, 2);
    assert_output(&run(), want);
    assert_eq!(
        vault.count("POST", "auth/approle/login"),
        2,
        "the second run logs in again"
    );
}
