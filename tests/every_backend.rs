//! Every backend in one run: a Vault default and a named profile for each of the other
//! providers (GCP, Azure Key Vault, Kubernetes Secrets, 1Password Connect, IBM Secrets Manager),
//! each against its test server, selected by placeholder prefixes. Each server sees one read per
//! secret, one token exchange where the provider has one, and nothing of the others' secrets.
#![cfg(all(
    feature = "vault",
    feature = "gcp",
    feature = "azure",
    feature = "kubernetes",
    feature = "onepassword",
    feature = "ibm"
))]

mod support;

use serde_json::json;
use support::azure::AzureServer;
use support::gcp::GcpServer;
use support::ibm::IbmServer;
use support::kube::KubeServer;
use support::onepassword::ConnectServer;
use support::output::{assert_output, stderr};
use support::run::Run;
use support::vault::{Policy, VaultServer};

const ROOT: &str = "root-token-s3cr3t";
const OP_TOKEN: &str = "connect-token-s3cr3t";

/// A profile's settings as YAML lines under `backends.NAME`.
fn profile(name: &str, env: &[(String, String)]) -> String {
    let mut text = format!("  {name}:\n");
    for (key, value) in env {
        text.push_str(&format!("    {key}: {}\n", json!(value)));
    }
    text
}

#[test]
fn six_backends_resolve_in_one_run_by_profile_prefix() {
    let vault = VaultServer::builder()
        .kv2("secret")
        .put("secret/db", json!({"password": "vault-s3cr3t"}))
        .token(ROOT, Policy::Root)
        .start();
    let gcp = GcpServer::start();
    gcp.add("projects/p/secrets/api", br#"{"key": "gcp-s3cr3t"}"#);
    let azure = AzureServer::start();
    azure.set("kv-prod", "smtp-password", "azure-s3cr3t");
    let kube = KubeServer::start();
    kube.add_secret("argocd", "tls", &[("key", "kube-s3cr3t")]);
    let connect = ConnectServer::start();
    let vault_id = connect.vault("infra");
    connect.item(&vault_id, "github", &[("token", "op-s3cr3t")]);
    connect.token(OP_TOKEN, &[&vault_id]);
    let ibm = IbmServer::start();
    ibm.put(
        "default",
        "kv",
        "queue",
        json!({"data": {"password": "ibm-s3cr3t"}}),
    );

    let dir = tempfile::tempdir().unwrap();
    let credentials = gcp.service_account_file(dir.path());
    let kubeconfig = kube.kubeconfig_in(dir.path(), "argocd");
    let mut config = String::from("backends:\n");
    config.push_str(&profile(
        "gcp",
        &[
            ("AVP_TYPE".into(), "gcpsecretmanager".into()),
            ("AVP_GCP_ENDPOINT".into(), gcp.url()),
            (
                "GOOGLE_APPLICATION_CREDENTIALS".into(),
                credentials.display().to_string(),
            ),
        ],
    ));
    config.push_str(&profile("azure", &azure.env()));
    config.push_str(&profile(
        "kube",
        &[("AVP_TYPE".into(), "kubernetessecret".into())],
    ));
    config.push_str(&profile(
        "op",
        &[
            ("AVP_TYPE".into(), "1passwordconnect".into()),
            ("OP_CONNECT_HOST".into(), connect.url()),
            ("OP_CONNECT_TOKEN".into(), OP_TOKEN.into()),
        ],
    ));
    config.push_str(&profile("ibm", &ibm.env()));
    let config_file = dir.path().join("settings.yaml");
    std::fs::write(&config_file, config).unwrap();

    let input = "kind: Secret\nmetadata:\n  name: all\nstringData:\n  vault: <path:secret/data/db#password>\n  gcp: <path:gcp:projects/p/secrets/api#key>\n  azure: <path:azure:kv-prod#smtp-password>\n  kube: <path:kube:tls#key>\n  op: <path:op:vaults/infra/items/github#token>\n  ibm: <path:ibm:ibmcloud/kv/secrets/groups/default/queue#password>\n  again: <path:gcp:projects/p/secrets/api#key>-<path:ibm:ibmcloud/kv/secrets/groups/default/queue#password>\n";
    let out = Run::new(["generate", "-c"])
        .arg(&config_file)
        .args(["--verbose-sensitive-output", "-"])
        .stdin(input)
        .env("AVP_TYPE", "vault")
        .env("VAULT_ADDR", vault.addr())
        .env("AVP_AUTH_TYPE", "token")
        .env("VAULT_TOKEN", ROOT)
        .env("KUBECONFIG", &kubeconfig)
        .env("GCE_METADATA_HOST", "127.0.0.1:1")
        .output();
    assert_output(
        &out,
        "kind: Secret\nmetadata:\n  name: all\nstringData:\n  vault: vault-s3cr3t\n  gcp: gcp-s3cr3t\n  azure: azure-s3cr3t\n  kube: kube-s3cr3t\n  op: op-s3cr3t\n  ibm: ibm-s3cr3t\n  again: gcp-s3cr3t-ibm-s3cr3t\n",
    );
    let err = stderr(&out);
    for leak in [
        "vault-s3cr3t",
        "gcp-s3cr3t",
        "azure-s3cr3t",
        "kube-s3cr3t",
        "op-s3cr3t",
        "ibm-s3cr3t",
        ROOT,
        OP_TOKEN,
    ] {
        assert!(!err.contains(leak), "{leak} leaked: {err}");
    }
    for counters in [
        "vault (default): unique secrets: 1, backend requests: 1",
        "gcpsecretmanager (gcp): unique secrets: 1, backend requests: 1",
        "azurekeyvault (azure): unique secrets: 1, backend requests: 1",
        "kubernetessecret (kube): unique secrets: 1, backend requests: 1",
        "1passwordconnect (op): unique secrets: 1, backend requests: 1",
        "ibmsecretsmanager (ibm): unique secrets: 1, backend requests: 1",
        "unique secrets: 6, backend requests: 6",
    ] {
        assert!(err.contains(counters), "{counters}: {err}");
    }
    // Each server: its one read, and its one token exchange where it has one.
    assert_eq!(vault.count("GET", "secret/data/db"), 1);
    assert_eq!((gcp.accesses(), gcp.token_requests()), (1, 1));
    assert_eq!((azure.reads("kv-prod"), azure.token_requests()), (1, 1));
    assert_eq!(kube.requests(), ["/api/v1/namespaces/argocd/secrets/tls"]);
    assert_eq!(
        connect.api_requests().len(),
        3,
        "{:?}",
        connect.api_requests()
    );
    assert_eq!(ibm.counts(), [1, 0, 1, 1]);
}
