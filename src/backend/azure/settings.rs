//! The settings of an `azurekeyvault` profile: the cloud, where its vaults are, and the
//! credential of azure_identity's DefaultAzureCredential order.

use std::fmt;

use anyhow::{Context as _, bail};
use url::Url;

use crate::config::Settings;

/// `AVP_AZURE_CLOUD` values, as azure_identity names the clouds.
const CLOUDS: &str = "AzurePublicCloud, AzureChinaCloud, AzureUSGovernment";

/// The variables DefaultAzureCredential reads: a named profile takes them whole from its own
/// settings when it sets any of them, else whole from the process environment (where the Azure
/// Workload Identity webhook puts them), so that one identity's variables never mix with
/// another's.
const CREDENTIAL_KEYS: &[&str] = &[
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_AUTHORITY_HOST",
    "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER",
];

/// A sovereign cloud: where its vaults, its Entra ID authority and its token audience are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cloud {
    Public,
    China,
    UsGovernment,
}

impl Cloud {
    fn parse(value: Option<&str>) -> anyhow::Result<Cloud> {
        Ok(match value.map(str::trim) {
            None | Some("AzurePublicCloud") => Cloud::Public,
            Some("AzureChinaCloud") => Cloud::China,
            Some("AzureUSGovernment") => Cloud::UsGovernment,
            Some(other) => bail!(
                "AVP_AZURE_CLOUD must be one of {CLOUDS}, got {:?}",
                crate::error::excerpt(other)
            ),
        })
    }

    /// The DNS suffix of its vaults.
    fn vault_suffix(self) -> &'static str {
        match self {
            Cloud::Public => "vault.azure.net",
            Cloud::China => "vault.azure.cn",
            Cloud::UsGovernment => "vault.usgovcloudapi.net",
        }
    }

    fn authority(self) -> &'static str {
        match self {
            Cloud::Public => "https://login.microsoftonline.com",
            Cloud::China => "https://login.chinacloudapi.cn",
            Cloud::UsGovernment => "https://login.microsoftonline.us",
        }
    }

    /// The audience of Key Vault tokens (managed identities ask for it as `resource`).
    pub fn resource(self) -> String {
        format!("https://{}", self.vault_suffix())
    }
}

/// Who secretsubst is towards Entra ID, in DefaultAzureCredential's order. No `Debug`: it
/// holds credentials.
pub enum Credential {
    /// `AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET`.
    ClientSecret {
        tenant: String,
        client_id: String,
        secret: String,
    },
    /// Azure Workload Identity: the service account token in `AZURE_FEDERATED_TOKEN_FILE`,
    /// re-read for each exchange since the kubelet rotates it.
    WorkloadIdentity {
        tenant: String,
        client_id: String,
        token_file: String,
    },
    /// App Service, Functions and Azure Arc: `IDENTITY_ENDPOINT` and `IDENTITY_HEADER`.
    AppService {
        endpoint: Url,
        header: String,
        client_id: Option<String>,
    },
    /// The instance metadata service of a VM, VM scale set or AKS node.
    Imds { client_id: Option<String> },
}

impl Credential {
    /// Which credential it is and whose, for `doctor` and logs; never the secret.
    pub fn describe(&self) -> String {
        match self {
            Credential::ClientSecret {
                tenant, client_id, ..
            } => format!(
                "client secret (AZURE_CLIENT_SECRET) of client {client_id} in tenant {tenant}"
            ),
            Credential::WorkloadIdentity {
                tenant,
                client_id,
                token_file,
            } => format!(
                "workload identity: the token in {token_file} for client {client_id} in tenant {tenant}"
            ),
            Credential::AppService {
                endpoint,
                client_id,
                ..
            } => format!(
                "managed identity{} at IDENTITY_ENDPOINT {}",
                user_assigned(client_id.as_deref()),
                endpoint.as_str()
            ),
            Credential::Imds { client_id } => format!(
                "managed identity{} from the instance metadata service (no AZURE_CLIENT_SECRET, AZURE_FEDERATED_TOKEN_FILE or IDENTITY_ENDPOINT is set)",
                user_assigned(client_id.as_deref())
            ),
        }
    }
}

fn user_assigned(client_id: Option<&str>) -> String {
    client_id.map_or(String::new(), |id| format!(" {id}"))
}

/// A profile's Azure settings, validated.
pub struct AzureSettings {
    pub cloud: Cloud,
    /// `AVP_AZURE_VAULT_URL`: a URL with `{name}` where the vault name goes.
    pub vault_url: String,
    /// `AZURE_AUTHORITY_HOST`, else the cloud's.
    pub authority: Url,
    pub credential: Credential,
    /// `AVP_MAX_CONCURRENCY`: the bound on requests in flight, shared by all vaults.
    pub max_concurrency: usize,
}

impl fmt::Debug for AzureSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AzureSettings")
            .field("cloud", &self.cloud)
            .field("vault_url", &self.vault_url)
            .field("authority", &self.authority.as_str())
            .field("credential", &self.credential.describe())
            .finish_non_exhaustive()
    }
}

impl AzureSettings {
    /// Reads the profile's settings; `env` looks a variable up in the process environment,
    /// for the credential variables a profile does not set.
    pub fn parse(
        settings: &Settings,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> anyhow::Result<AzureSettings> {
        let cloud = Cloud::parse(settings.get("AVP_AZURE_CLOUD"))?;
        let vault_url = match settings.get("AVP_AZURE_VAULT_URL").map(str::trim) {
            Some(template) => check_template(template)?,
            None => format!("https://{{name}}.{}", cloud.vault_suffix()),
        };
        let own = CREDENTIAL_KEYS.iter().any(|k| settings.get(k).is_some());
        // A file's final line break is not part of a secret or an ID.
        let get = |key: &str| {
            let value = match own {
                true => settings.get(key).map(str::to_owned),
                false => env(key),
            };
            value
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let authority = match get("AZURE_AUTHORITY_HOST") {
            Some(host) => http_url("AZURE_AUTHORITY_HOST", &host)?,
            None => Url::parse(cloud.authority()).expect("a valid authority"),
        };
        let (tenant, client_id) = (get("AZURE_TENANT_ID"), get("AZURE_CLIENT_ID"));
        let credential = if let Some(secret) = get("AZURE_CLIENT_SECRET") {
            let (tenant, client_id) = needs(tenant, client_id, "AZURE_CLIENT_SECRET")?;
            Credential::ClientSecret {
                tenant,
                client_id,
                secret,
            }
        } else if let Some(token_file) = get("AZURE_FEDERATED_TOKEN_FILE") {
            let (tenant, client_id) = needs(tenant, client_id, "AZURE_FEDERATED_TOKEN_FILE")?;
            Credential::WorkloadIdentity {
                tenant,
                client_id,
                token_file,
            }
        } else if let Some(endpoint) = get("IDENTITY_ENDPOINT") {
            Credential::AppService {
                endpoint: http_url("IDENTITY_ENDPOINT", &endpoint)?,
                header: header_value(get("IDENTITY_HEADER"))?,
                client_id,
            }
        } else {
            Credential::Imds { client_id }
        };
        let (max_concurrency, _) = crate::config::limits(settings)?;
        Ok(AzureSettings {
            cloud,
            vault_url,
            authority,
            credential,
            max_concurrency,
        })
    }
}

/// The tenant and client ID that `with` needs.
fn needs(
    tenant: Option<String>,
    client_id: Option<String>,
    with: &str,
) -> anyhow::Result<(String, String)> {
    match (tenant, client_id) {
        (Some(tenant), Some(client_id)) => Ok((tenant, client_id)),
        (tenant, _) => bail!(
            "{with} is set but {} is not: the credential needs AZURE_TENANT_ID and AZURE_CLIENT_ID",
            if tenant.is_none() {
                "AZURE_TENANT_ID"
            } else {
                "AZURE_CLIENT_ID"
            }
        ),
    }
}

/// `IDENTITY_HEADER` goes into a header: it must be set, without control characters.
fn header_value(value: Option<String>) -> anyhow::Result<String> {
    let value = value.context("IDENTITY_ENDPOINT is set but IDENTITY_HEADER is not")?;
    if value.chars().any(|c| c.is_control() || !c.is_ascii()) {
        bail!("IDENTITY_HEADER holds a character that cannot be sent in an HTTP header");
    }
    Ok(value)
}

fn http_url(key: &str, value: &str) -> anyhow::Result<Url> {
    let url = Url::parse(value)
        .map_err(|e| anyhow::anyhow!("{key} {:?} is not a URL ({e})", crate::error::excerpt(value)))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        bail!("{key} {:?} is not an http(s) URL", crate::error::excerpt(value));
    }
    Ok(url)
}

/// Checks that `template` becomes an http(s) URL once a vault name replaces `{name}`.
fn check_template(template: &str) -> anyhow::Result<String> {
    if !template.contains("{name}") {
        bail!(
            "AVP_AZURE_VAULT_URL {:?} has no {{name}} where the vault name goes (such as https://{{name}}.vault.azure.net)",
            crate::error::excerpt(template)
        );
    }
    http_url("AVP_AZURE_VAULT_URL", &template.replace("{name}", "vault"))?;
    Ok(template.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)], env: &[(&str, &str)]) -> anyhow::Result<AzureSettings> {
        let settings = Settings::merge(
            pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
            &[],
        );
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        AzureSettings::parse(&settings, &|key| {
            env.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn clouds_set_the_vault_suffix_authority_and_audience() {
        let public = parse(&[], &[]).unwrap();
        assert_eq!(public.vault_url, "https://{name}.vault.azure.net");
        assert_eq!(public.authority.as_str(), "https://login.microsoftonline.com/");
        assert_eq!(public.cloud.resource(), "https://vault.azure.net");
        let china = parse(&[("AVP_AZURE_CLOUD", "AzureChinaCloud")], &[]).unwrap();
        assert_eq!(china.vault_url, "https://{name}.vault.azure.cn");
        assert_eq!(china.authority.as_str(), "https://login.chinacloudapi.cn/");
        let gov = parse(&[("AVP_AZURE_CLOUD", "AzureUSGovernment")], &[]).unwrap();
        assert_eq!(gov.vault_url, "https://{name}.vault.usgovcloudapi.net");
        assert_eq!(gov.authority.as_str(), "https://login.microsoftonline.us/");
        assert_eq!(gov.cloud.resource(), "https://vault.usgovcloudapi.net");
        let err = parse(&[("AVP_AZURE_CLOUD", "AzureGermanCloud")], &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "AVP_AZURE_CLOUD must be one of AzurePublicCloud, AzureChinaCloud, AzureUSGovernment, got \"AzureGermanCloud\""
        );
    }

    #[test]
    fn the_authority_host_and_vault_url_can_be_overridden() {
        let s = parse(
            &[
                ("AZURE_AUTHORITY_HOST", "https://login.example/"),
                ("AVP_AZURE_VAULT_URL", "http://127.0.0.1:1/{name}"),
            ],
            &[],
        )
        .unwrap();
        assert_eq!(s.authority.as_str(), "https://login.example/");
        assert_eq!(s.vault_url, "http://127.0.0.1:1/{name}");
        let err = parse(&[("AVP_AZURE_VAULT_URL", "https://kv.example")], &[]).unwrap_err();
        assert!(err.to_string().contains("has no {name}"), "{err}");
        let err = parse(&[("AVP_AZURE_VAULT_URL", "ftp://{name}.example")], &[]).unwrap_err();
        assert!(err.to_string().contains("is not an http(s) URL"), "{err}");
    }

    #[test]
    fn credentials_follow_the_default_azure_credential_order() {
        let all = [
            ("AZURE_TENANT_ID", "t"),
            ("AZURE_CLIENT_ID", "c"),
            ("AZURE_CLIENT_SECRET", "s3cr3t\n"),
            ("AZURE_FEDERATED_TOKEN_FILE", "/token"),
            ("IDENTITY_ENDPOINT", "http://127.0.0.1:1/msi/token"),
            ("IDENTITY_HEADER", "h"),
        ];
        let kind = |pairs: &[(&str, &str)]| match parse(pairs, &[]).unwrap().credential {
            Credential::ClientSecret { secret, .. } => format!("secret {secret}"),
            Credential::WorkloadIdentity { token_file, .. } => format!("federated {token_file}"),
            Credential::AppService { client_id, .. } => format!("app service {client_id:?}"),
            Credential::Imds { client_id } => format!("imds {client_id:?}"),
        };
        assert_eq!(kind(&all), "secret s3cr3t");
        assert_eq!(kind(&all[4..]), "app service None");
        let without_secret: Vec<_> = all.iter().copied().filter(|(k, _)| *k != "AZURE_CLIENT_SECRET").collect();
        assert_eq!(kind(&without_secret), "federated /token");
        assert_eq!(kind(&all[1..2]), "imds Some(\"c\")");
        assert_eq!(kind(&[]), "imds None");
    }

    #[test]
    fn a_partial_credential_is_an_error_that_names_what_is_missing() {
        let err = parse(&[("AZURE_CLIENT_SECRET", "s3cr3t"), ("AZURE_CLIENT_ID", "c")], &[])
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "AZURE_CLIENT_SECRET is set but AZURE_TENANT_ID is not: the credential needs AZURE_TENANT_ID and AZURE_CLIENT_ID"
        );
        let err = parse(&[("IDENTITY_ENDPOINT", "http://127.0.0.1:1/")], &[]).unwrap_err();
        assert_eq!(err.to_string(), "IDENTITY_ENDPOINT is set but IDENTITY_HEADER is not");
    }

    #[test]
    fn a_profile_takes_its_credential_whole_from_its_settings_or_from_the_environment() {
        let env = [
            ("AZURE_TENANT_ID", "env-tenant"),
            ("AZURE_CLIENT_ID", "env-client"),
            ("AZURE_FEDERATED_TOKEN_FILE", "/env/token"),
        ];
        let Credential::WorkloadIdentity { tenant, .. } = parse(&[], &env).unwrap().credential
        else {
            panic!("the environment's workload identity");
        };
        assert_eq!(tenant, "env-tenant");
        // Its own client ID does not pair with the environment's tenant and token file.
        let own = parse(&[("AZURE_CLIENT_ID", "own")], &env).unwrap();
        assert!(matches!(own.credential, Credential::Imds { client_id: Some(c) } if c == "own"));
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let s = parse(
            &[
                ("AZURE_TENANT_ID", "t"),
                ("AZURE_CLIENT_ID", "c"),
                ("AZURE_CLIENT_SECRET", "s3cr3t"),
            ],
            &[],
        )
        .unwrap();
        assert!(!format!("{s:?}").contains("s3cr3t"));
    }
}
