//! One behaviour suite for every backend: the same cases, with the same inputs and the same
//! expected output, run against the values file, the in-repo Vault test server, moto (AWS
//! Secrets Manager) and the in-repo Google Cloud test server (Secret Manager). Each backend holds
//! the same secrets:
//!
//! - `app`: `user` (a string), `n` (a number), `flag` (a boolean), `cfg` (a map with a list);
//! - `versioned`: `pw`, first `old-s3cr3t`, then `new-s3cr3t`.
//!
//! A values file has no access control and no transient failures, so the denied and transient
//! cases run against Vault and AWS only; SOPS files have no versions and no network (their
//! "denied" is a file for an identity we do not hold), so they join every case but version
//! pinning and transient failures. Kubernetes Secrets hold strings only (the typed case expects
//! their text as strings) and no versions (AVP ignores them); 1Password items are the same.
//! Azure Key Vault holds each suite secret as a vault and each key as one of its secrets, with
//! string values and versions. IBM Secrets Manager holds them as `kv` secrets of the `default`
//! group, read one secret per path (`ibmcloud/kv/secrets/groups/default/app#user`), so its values
//! keep their JSON types; its pin of the first version is the `previous` alias. Secret Manager payloads are bytes:
//! its secrets hold JSON objects, whose keys are typed, so it joins every case. A later backend
//! joins by adding its fixture and one `suite!` line; entries for a backend behind a cargo
//! feature are gated by it, since the binary lacks that backend without it.

mod support;

use std::process::Output;

use serde_json::json;
use support::kube::KubeServer;
#[cfg(feature = "onepassword")]
use support::onepassword::ConnectServer;
use support::output::{assert_failure, assert_output, stderr};
use support::run::Run;
use support::vault::{Policy, VaultServer};

/// Every value stored; none may reach stderr.
const VALUES: &[&str] = &[
    "admin-s3cr3t",
    "old-s3cr3t",
    "new-s3cr3t",
    "denied-s3cr3t",
    "connect-token-s3cr3t",
];
const VERBOSE: &str = "--verbose-sensitive-output";

/// A backend holding the standard secrets, and what its placeholders and errors look like.
struct Fixture {
    /// `AVP_TYPE`, which prefixes its errors.
    backend: &'static str,
    env: Vec<(String, String)>,
    /// What a placeholder puts before a secret's name (`secret/data/` on Vault).
    prefix: String,
    /// The pin of the first version of `versioned`.
    first_version: &'static str,
    /// How a missing key is named.
    missing: &'static str,
    /// What the backend's error says for a secret that does not exist.
    not_found: &'static str,
    /// Whether values keep their JSON or YAML type (`3`, `true`, a map); a backend of strings
    /// only (Kubernetes Secrets) stores their text.
    typed: bool,
    /// Servers and files, kept for the runs.
    _guards: Vec<Box<dyn std::any::Any>>,
}

impl Fixture {
    /// `generate -` on `input` with the backend's settings, verbose; whatever the outcome, no
    /// value reaches stderr.
    fn run(&self, input: &str) -> Output {
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let out = Run::generate(&input.replace("{p}", &self.prefix))
            .envs(&env)
            .arg(VERBOSE)
            .output();
        let err = stderr(&out);
        for value in VALUES {
            assert!(!err.contains(value), "stderr leaks {value:?}: {err}");
        }
        out
    }

    /// Asserts a failure whose one error line is `want` (with `{p}` for the prefix).
    fn assert_error(&self, out: &Output, want: &str) {
        let err = assert_failure(out, VALUES);
        let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error: ")).collect();
        assert_eq!(errors, [want.replace("{p}", &self.prefix)], "{err}");
    }
}

fn values_file() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("values.yaml");
    std::fs::write(
        &file,
        "app:\n  user: admin-s3cr3t\n  n: 3\n  flag: true\n  cfg: {a: [1, x]}\n\
         versioned:\n  pw: new-s3cr3t\n\"versioned#1\":\n  pw: old-s3cr3t\n",
    )
    .unwrap();
    Fixture {
        backend: "file",
        env: vec![
            ("AVP_TYPE".into(), "file".into()),
            ("AVP_VALUES_FILE".into(), file.display().to_string()),
        ],
        prefix: String::new(),
        first_version: "1",
        missing: "missing value",
        not_found: "not found in the values file",
        typed: true,
        _guards: vec![Box::new(dir)],
    }
}

const ROOT: &str = "root-token-s3cr3t";
const READER: &str = "reader-token-s3cr3t";

fn vault_server() -> VaultServer {
    VaultServer::builder()
        .kv2("secret")
        .put(
            "secret/app",
            json!({"user": "admin-s3cr3t", "n": 3, "flag": true, "cfg": {"a": [1, "x"]}}),
        )
        .put("secret/versioned", json!({"pw": "old-s3cr3t"}))
        .put("secret/versioned", json!({"pw": "new-s3cr3t"}))
        .put("secret/denied", json!({"k": "denied-s3cr3t"}))
        .token(ROOT, Policy::Root)
        .token(
            READER,
            Policy::Read(vec![
                "secret/data/app".into(),
                "sys/internal/ui/mounts".into(),
            ]),
        )
        .start()
}

fn vault_with(server: VaultServer, token: &str) -> Fixture {
    Fixture {
        backend: "vault",
        env: vec![
            ("AVP_TYPE".into(), "vault".into()),
            ("VAULT_ADDR".into(), server.addr()),
            ("AVP_AUTH_TYPE".into(), "token".into()),
            ("VAULT_TOKEN".into(), token.into()),
        ],
        prefix: "secret/data/".into(),
        first_version: "1",
        missing: "missing Vault value",
        not_found: "404 not found",
        typed: true,
        _guards: vec![Box::new(server)],
    }
}

fn vault() -> Fixture {
    vault_with(vault_server(), ROOT)
}

/// The standard secrets in the shared moto, under a prefix of their own; runs reach them at
/// `url` (moto itself, or a proxy in front of it).
#[cfg(feature = "aws")]
fn aws_at(url: &str) -> Fixture {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let prefix = format!(
        "suite-{}-{}/",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    );
    let create = |name: &str, value: &str| {
        support::moto::create("us-east-1", &format!("{prefix}{name}"), Some(value), None);
    };
    create(
        "app",
        r#"{"user": "admin-s3cr3t", "n": 3, "flag": true, "cfg": {"a": [1, "x"]}}"#,
    );
    create("versioned", r#"{"pw": "old-s3cr3t"}"#);
    support::moto::put(
        &format!("{prefix}versioned"),
        r#"{"pw": "new-s3cr3t"}"#,
        &[],
    );
    let mut env = support::moto::env(url);
    env.push(("AVP_TYPE".into(), "awssecretsmanager".into()));
    env.push(("AWS_REGION".into(), "us-east-1".into()));
    Fixture {
        backend: "awssecretsmanager",
        env,
        prefix,
        first_version: "AWSPREVIOUS",
        missing: "missing value",
        not_found: "ResourceNotFoundException",
        typed: true,
        _guards: Vec::new(),
    }
}

#[cfg(feature = "aws")]
fn aws() -> Fixture {
    aws_at(&support::moto::url())
}

/// The standard `app` secret as a SOPS file the real sops encrypted (testdata/sops/suite/,
/// made by testdata/sops/regenerate.sh).
fn sops() -> Fixture {
    Fixture {
        backend: "sops",
        env: vec![
            ("AVP_TYPE".into(), "sops".into()),
            (
                "SOPS_AGE_KEY_FILE".into(),
                concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/testdata/sops/keys/test.agekey"
                )
                .into(),
            ),
        ],
        prefix: "testdata/sops/suite/".into(),
        first_version: "",
        missing: "missing value",
        not_found: "cannot read: No such file or directory",
        typed: true,
        _guards: Vec::new(),
    }
}

/// The standard secrets as Kubernetes Secrets in `argocd` (strings only), `denied` in a
/// namespace the API refuses; the allow-list admits both.
fn kubernetes_with(server: KubeServer) -> Fixture {
    server.add_secret(
        "argocd",
        "app",
        &[
            ("user", "admin-s3cr3t"),
            ("n", "3"),
            ("flag", "true"),
            ("cfg", r#"{"a":[1,"x"]}"#),
        ],
    );
    server.add_secret("locked", "denied", &[("k", "denied-s3cr3t")]);
    server.forbid("locked");
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = server.kubeconfig_in(dir.path(), "argocd");
    Fixture {
        backend: "kubernetessecret",
        env: vec![
            ("AVP_TYPE".into(), "kubernetessecret".into()),
            ("KUBECONFIG".into(), kubeconfig.display().to_string()),
            ("AVP_K8S_SECRET_NAMESPACES".into(), "argocd,locked".into()),
        ],
        prefix: "argocd:".into(),
        first_version: "",
        missing: "missing value",
        not_found: "404 secrets \"nothing\" not found",
        typed: false,
        _guards: vec![Box::new(server), Box::new(dir)],
    }
}

/// The standard secrets, and `denied`, in a Google Cloud test server's project `suite`, read
/// with a service account.
#[cfg(feature = "gcp")]
fn gcp() -> Fixture {
    let server = support::gcp::GcpServer::start();
    let secret = |name: &str| format!("projects/suite/secrets/{name}");
    server
        .add(
            &secret("app"),
            br#"{"user": "admin-s3cr3t", "n": 3, "flag": true, "cfg": {"a": [1, "x"]}}"#,
        )
        .add(&secret("versioned"), br#"{"pw": "old-s3cr3t"}"#)
        .add(&secret("versioned"), br#"{"pw": "new-s3cr3t"}"#)
        .add(&secret("denied"), br#"{"k": "denied-s3cr3t"}"#);
    server.deny(&secret("denied"));
    let dir = tempfile::tempdir().unwrap();
    let credentials = server.service_account_file(dir.path());
    Fixture {
        backend: "gcpsecretmanager",
        env: vec![
            ("AVP_TYPE".into(), "gcpsecretmanager".into()),
            ("AVP_GCP_ENDPOINT".into(), server.url()),
            (
                "GOOGLE_APPLICATION_CREDENTIALS".into(),
                credentials.display().to_string(),
            ),
            ("GCE_METADATA_HOST".into(), "127.0.0.1:1".into()),
        ],
        prefix: "projects/suite/secrets/".into(),
        first_version: "1",
        missing: "missing value",
        not_found: "404 NOT_FOUND: Secret [projects/suite/secrets/nothing] not found or has no versions",
        typed: true,
        _guards: vec![Box::new(server), Box::new(dir)],
    }
}

fn kubernetes() -> Fixture {
    kubernetes_with(KubeServer::start())
}

#[cfg(feature = "onepassword")]
const OP_TOKEN: &str = "connect-token-s3cr3t";

/// The standard secrets as items of the vault `suite` in the Connect test server, read by
/// their titles; values are strings. The token may not read the vault `locked`, which holds
/// `denied`.
#[cfg(feature = "onepassword")]
fn onepassword_server() -> ConnectServer {
    let server = ConnectServer::start();
    let suite = server.vault("suite");
    server.item(
        &suite,
        "app",
        &[
            ("user", "admin-s3cr3t"),
            ("n", "3"),
            ("flag", "true"),
            ("cfg", r#"{"a":[1,"x"]}"#),
        ],
    );
    server.item(&suite, "versioned", &[("pw", "new-s3cr3t")]);
    let locked = server.vault("locked");
    server.item(&locked, "denied", &[("k", "denied-s3cr3t")]);
    server.token(OP_TOKEN, &[&suite]);
    server
}

#[cfg(feature = "onepassword")]
fn onepassword_with(server: ConnectServer) -> Fixture {
    Fixture {
        backend: "1passwordconnect",
        env: vec![
            ("AVP_TYPE".into(), "1passwordconnect".into()),
            ("OP_CONNECT_HOST".into(), server.url()),
            ("OP_CONNECT_TOKEN".into(), OP_TOKEN.into()),
        ],
        prefix: "vaults/suite/items/".into(),
        first_version: "",
        missing: "missing value",
        not_found: "no item titled \"nothing\" in vault \"suite\"",
        typed: false,
        _guards: vec![Box::new(server)],
    }
}

#[cfg(feature = "onepassword")]
fn onepassword() -> Fixture {
    onepassword_with(onepassword_server())
}

/// The standard secrets as Azure Key Vault holds them: each suite secret is a vault, each key
/// one of its secrets, every value a string.
#[cfg(feature = "azure")]
fn azure() -> Fixture {
    azure_with(support::azure::AzureServer::start())
}

#[cfg(feature = "azure")]
fn azure_with(server: support::azure::AzureServer) -> Fixture {
    for (key, value) in [
        ("user", "admin-s3cr3t"),
        ("n", "3"),
        ("flag", "true"),
        ("cfg", r#"{"a":[1,"x"]}"#),
    ] {
        server.set("app", key, value);
    }
    let first = server.set("versioned", "pw", "old-s3cr3t");
    server.set("versioned", "pw", "new-s3cr3t");
    server.deny("denied");
    server.set("denied", "k", "denied-s3cr3t");
    Fixture {
        backend: "azurekeyvault",
        env: server.env(),
        prefix: String::new(),
        first_version: Box::leak(first.into_boxed_str()),
        missing: "missing value",
        not_found: "404 not found: secret k in vault nothing",
        typed: false,
        _guards: vec![Box::new(server)],
    }
}

/// The standard secrets in the IBM Cloud test server, `denied` refused to every token.
#[cfg(feature = "ibm")]
fn ibm_server() -> support::ibm::IbmServer {
    let server = support::ibm::IbmServer::start();
    let put = |name: &str, data: serde_json::Value| {
        server.put("default", "kv", name, json!({ "data": data }));
    };
    put(
        "app",
        json!({"user": "admin-s3cr3t", "n": 3, "flag": true, "cfg": {"a": [1, "x"]}}),
    );
    put("versioned", json!({"pw": "old-s3cr3t"}));
    put("versioned", json!({"pw": "new-s3cr3t"}));
    put("denied", json!({"k": "denied-s3cr3t"}));
    server.deny("denied");
    server
}

#[cfg(feature = "ibm")]
fn ibm_with(server: support::ibm::IbmServer) -> Fixture {
    Fixture {
        backend: "ibmsecretsmanager",
        env: server.env(),
        prefix: "ibmcloud/kv/secrets/groups/default/".into(),
        first_version: "previous",
        missing: "missing value",
        not_found: "not found in secret group default",
        typed: true,
        _guards: vec![Box::new(server)],
    }
}

#[cfg(feature = "ibm")]
fn ibm() -> Fixture {
    ibm_with(ibm_server())
}

const SECRET: &str = "kind: Secret\nmetadata:\n  name: s\nstringData:\n  x: ";

fn reads_a_key(f: &Fixture) {
    let out = f.run(&format!("{SECRET}<path:{{p}}app#user>\n"));
    assert_output(&out, &format!("{SECRET}admin-s3cr3t\n"));
}

/// Typed values are injected typed outside Secrets; a string backend's text stays a string.
fn typed_values_are_injected_typed_and_stringified_in_secrets(f: &Fixture) {
    let deployment = "kind: Deployment\nmetadata:\n  name: d\nspec:\n  replicas: <path:{p}app#n>\n  paused: <path:{p}app#flag>\n  cfg: <path:{p}app#cfg>\n  label: \"<path:{p}app#n>\"\n";
    let out = f.run(deployment);
    let want = match f.typed {
        true => {
            "kind: Deployment\nmetadata:\n  name: d\nspec:\n  replicas: 3\n  paused: true\n  cfg: {\"a\":[1,\"x\"]}\n  label: \"3\"\n"
        }
        false => {
            "kind: Deployment\nmetadata:\n  name: d\nspec:\n  replicas: \"3\"\n  paused: \"true\"\n  cfg: \"{\\\"a\\\":[1,\\\"x\\\"]}\"\n  label: \"3\"\n"
        }
    };
    assert_output(&out, want);
    let out = f.run("kind: Secret\nstringData:\n  n: <path:{p}app#n>\n  flag: <path:{p}app#flag>\n  cfg: <path:{p}app#cfg>\n");
    assert_output(
        &out,
        "kind: Secret\nstringData:\n  n: \"3\"\n  flag: \"true\"\n  cfg: \"{\\\"a\\\":[1,\\\"x\\\"]}\"\n",
    );
}

fn a_missing_key_is_named_with_its_secret(f: &Fixture) {
    let out = f.run(&format!("{SECRET}<path:{{p}}app#nope>\n"));
    f.assert_error(
        &out,
        &format!(
            "error: <stdin>: doc 1 (Secret/s): stringData.x: <path:{{p}}app#nope>: {}: key \"nope\" not found in {{p}}app",
            f.missing
        ),
    );
}

fn an_unknown_secret_is_not_found(f: &Fixture) {
    let out = f.run(&format!("{SECRET}<path:{{p}}nothing#k>\n"));
    let err = assert_failure(&out, VALUES);
    let line = err.lines().find(|l| l.starts_with("error: ")).unwrap();
    let start = format!(
        "error: <stdin>: doc 1 (Secret/s): stringData.x: <path:{}nothing#k>: {}: ",
        f.prefix, f.backend
    );
    assert!(line.starts_with(&start), "{line}");
    assert!(line.contains(f.not_found), "{line}");
    assert!(line.contains(&format!("{}nothing", f.prefix)), "{line}");
}

fn a_pinned_version_reads_that_version(f: &Fixture) {
    let input = format!(
        "{SECRET}<path:{{p}}versioned#pw#{}>\n  y: <path:{{p}}versioned#pw>\n",
        f.first_version
    );
    let out = f.run(&input);
    assert_output(&out, &format!("{SECRET}old-s3cr3t\n  y: new-s3cr3t\n"));
    assert!(
        stderr(&out).contains("unique secrets: 2, backend requests: 2"),
        "{}",
        stderr(&out)
    );
}

/// A read the backend refuses: the error says so; returns the line for backend-specific checks.
fn a_denied_read_says_so(f: &Fixture, path: &str, denied: &str) -> String {
    let out = f.run(&format!("{SECRET}<path:{path}#k>\n"));
    let err = assert_failure(&out, VALUES);
    let line = err.lines().find(|l| l.starts_with("error: ")).unwrap();
    let start = format!(
        "error: <stdin>: doc 1 (Secret/s): stringData.x: <path:{path}#k>: {}: ",
        f.backend
    );
    assert!(line.starts_with(&start), "{line}");
    assert!(line.contains(denied), "{line}");
    line.to_owned()
}

/// A read that failed once with a transient error succeeds on its retry: two requests.
fn reads_after_one_retry(f: &Fixture) {
    let out = f.run(&format!("{SECRET}<path:{{p}}app#user>\n"));
    assert_output(&out, &format!("{SECRET}admin-s3cr3t\n"));
    assert!(
        stderr(&out).contains("backend requests: 2"),
        "{}",
        stderr(&out)
    );
}

/// Vault and AWS identities have policies, and their refusals say where to look.
const POLICY_HINT: &str = "(check the policy of the identity secretsubst logs in as)";

/// Every case, one test each, for each backend.
macro_rules! suite {
    ($($backend:ident),* $(,)?) => {$(
        mod $backend {
            #[test]
            fn reads_a_key() {
                super::reads_a_key(&super::$backend());
            }

            #[test]
            fn typed_values_are_injected_typed_and_stringified_in_secrets() {
                super::typed_values_are_injected_typed_and_stringified_in_secrets(&super::$backend());
            }

            #[test]
            fn a_missing_key_is_named_with_its_secret() {
                super::a_missing_key_is_named_with_its_secret(&super::$backend());
            }

            #[test]
            fn an_unknown_secret_is_not_found() {
                super::an_unknown_secret_is_not_found(&super::$backend());
            }

        }
    )*};
}

/// Version pinning, for the backends that keep versions.
macro_rules! versions {
    ($($backend:ident),* $(,)?) => {$(
        #[test]
        fn $backend() {
            a_pinned_version_reads_that_version(&super::$backend());
        }
    )*};
}

suite!(values_file, vault, sops);
#[cfg(feature = "aws")]
suite!(aws);
#[cfg(feature = "kubernetes")]
suite!(kubernetes);
#[cfg(feature = "azure")]
suite!(azure);
#[cfg(feature = "gcp")]
suite!(gcp);
#[cfg(feature = "ibm")]
suite!(ibm);
#[cfg(feature = "onepassword")]
suite!(onepassword);

mod a_pinned_version_reads_that_version {
    use super::*;

    versions!(values_file, vault);
    #[cfg(feature = "aws")]
    versions!(aws);
    #[cfg(feature = "gcp")]
    versions!(gcp);
    #[cfg(feature = "azure")]
    versions!(azure);
    #[cfg(feature = "ibm")]
    versions!(ibm);
}

#[test]
fn vault_denied_read_says_so() {
    let f = vault_with(vault_server(), READER);
    let line = a_denied_read_says_so(&f, "secret/data/denied", "403 permission denied");
    assert!(line.ends_with(POLICY_HINT), "{line}");
}

#[test]
fn vault_transient_failure_then_success() {
    let server = vault_server();
    server.fail_next_on("/v1/secret/data/app", 1, 503);
    let f = vault_with(server, ROOT);
    reads_after_one_retry(&f);
}

#[test]
#[cfg(feature = "aws")]
fn aws_denied_read_says_so() {
    // IAM checks apply to a whole moto server, so this case has one of its own.
    let moto = support::moto::OwnMoto::start();
    let (id, secret) = moto.deny_all_user(
        r#"boto3.client("secretsmanager", **kw).create_secret(Name="denied", SecretString='{"k": "denied-s3cr3t"}')"#,
    );
    let (id, secret) = (id.as_str(), secret.as_str());
    let mut f = aws_at(&moto.url);
    f.env
        .retain(|(k, _)| k != "AWS_ACCESS_KEY_ID" && k != "AWS_SECRET_ACCESS_KEY");
    f.env.push(("AWS_ACCESS_KEY_ID".into(), id.into()));
    f.env.push(("AWS_SECRET_ACCESS_KEY".into(), secret.into()));
    let line = a_denied_read_says_so(
        &f,
        "denied",
        "AccessDenied: denied: User: arn:aws:iam::123456789012:user/reader is not authorized",
    );
    assert!(line.ends_with(POLICY_HINT), "{line}");
}

#[cfg(feature = "kubernetes")]
#[test]
fn kubernetes_denied_read_says_so() {
    a_denied_read_says_so(
        &kubernetes(),
        "locked:denied",
        "kubernetessecret: Secret locked/denied: 403 secrets \"denied\" is forbidden",
    );
}

#[cfg(feature = "kubernetes")]
#[test]
fn kubernetes_transient_failure_then_success() {
    let server = KubeServer::start();
    server.http().fail_next(
        "/api/v1/namespaces/argocd/secrets/app",
        1,
        support::http::Reply::json(
            503,
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": "the server is currently unable to handle the request", "reason": "ServiceUnavailable", "code": 503}),
        ),
    );
    let f = kubernetes_with(server);
    reads_after_one_retry(&f);
}

#[cfg(feature = "onepassword")]
#[test]
fn onepassword_denied_read_says_so() {
    let server = onepassword_server();
    let locked = server.vault_id("locked");
    let f = onepassword_with(server);
    let line = a_denied_read_says_so(
        &f,
        &format!("vaults/{locked}/items/denied"),
        &format!("403 vault {locked} is not in scope: vaults/{locked}/items/denied"),
    );
    assert!(
        line.ends_with("(check which vaults the Connect token may read)"),
        "{line}"
    );
}

#[cfg(feature = "onepassword")]
#[test]
fn onepassword_transient_failure_then_success() {
    let server = onepassword_server();
    server.http().fail_next(
        "/v1/vaults",
        1,
        support::onepassword::error(503, "Service Unavailable"),
    );
    let f = onepassword_with(server);
    reads_after_one_retry(&f);
}

#[cfg(feature = "azure")]
#[test]
fn azure_denied_read_says_so() {
    let line = a_denied_read_says_so(
        &azure(),
        "denied",
        "403 Forbidden (ForbiddenByRbac): Caller is not authorized to perform action on resource: secret k in vault denied",
    );
    assert!(line.ends_with("Key Vault Secrets User role on the vault, or an access policy that allows get and list)"), "{line}");
}

#[cfg(feature = "azure")]
#[test]
fn azure_transient_failure_then_success() {
    let server = support::azure::AzureServer::start();
    server.http().fail_next(
        "/app/secrets/user",
        1,
        support::http::Reply::json(
            503,
            json!({"error": {"code": "ServiceUnavailable", "message": "The service is unavailable."}}),
        ),
    );
    let f = azure_with(server);
    reads_after_one_retry(&f);
}

#[cfg(feature = "ibm")]
#[test]
fn ibm_denied_read_says_so() {
    let line = a_denied_read_says_so(
        &ibm(),
        "ibmcloud/kv/secrets/groups/default/denied",
        "403 Forbidden: ibmcloud/kv/secrets/groups/default/denied",
    );
    assert!(
        line.ends_with("(check the access policy of the service ID or trusted profile: reading secrets needs the SecretsReader role)"),
        "{line}"
    );
}

#[cfg(feature = "ibm")]
#[test]
fn ibm_transient_failure_then_success() {
    let server = ibm_server();
    server.fail_next("/api/v2/secrets/", 1, 503, None);
    let f = ibm_with(server);
    reads_after_one_retry(&f);
}

#[test]
fn sops_denied_read_says_so() {
    a_denied_read_says_so(
        &sops(),
        "testdata/sops/suite/denied",
        "no age identity matches",
    );
}

#[test]
#[cfg(feature = "aws")]
fn aws_transient_failure_then_success() {
    let upstream = support::moto::url();
    let upstream = upstream.trim_start_matches("http://").parse().unwrap();
    let proxy = support::proxy::FaultyProxy::start(upstream, 1);
    let f = aws_at(&proxy.url());
    let out = f.run(&format!("{SECRET}<path:{{p}}app#user>\n"));
    assert_output(&out, &format!("{SECRET}admin-s3cr3t\n"));
    assert_eq!(proxy.failed(), 1);
    assert!(
        stderr(&out).contains("backend requests: 2"),
        "{}",
        stderr(&out)
    );
}

#[test]
#[cfg(feature = "gcp")]
fn gcp_denied_read_says_so() {
    let line = a_denied_read_says_so(
        &gcp(),
        "projects/suite/secrets/denied",
        "403 PERMISSION_DENIED: Permission 'secretmanager.versions.access' denied for resource 'projects/suite/secrets/denied/versions/latest' (or it may not exist): projects/suite/secrets/denied",
    );
    assert!(
        line.ends_with("(grant the identity secretsubst runs as roles/secretmanager.secretAccessor on the secret or its project)"),
        "{line}"
    );
}

#[test]
#[cfg(feature = "gcp")]
fn gcp_transient_failure_then_success() {
    let f = gcp();
    let server = f._guards[0]
        .downcast_ref::<support::gcp::GcpServer>()
        .unwrap();
    server.http().fail_next(
        "/v1/projects/suite/secrets/app/",
        1,
        support::gcp::rpc_error(503, "UNAVAILABLE", "The service is currently unavailable."),
    );
    reads_after_one_retry(&f);
}
