//! The settings of an `ibmsecretsmanager` profile: the instance, the IAM endpoint, and the
//! credential IAM exchanges for a token.

use std::fmt;

use anyhow::bail;
use url::Url;

use crate::backend::rest;
use crate::config::Settings;

/// IBM Cloud's public IAM endpoint, the SDKs' default.
pub const DEFAULT_IAM: &str = "https://iam.cloud.ibm.com";

/// Where IKS and Code Engine mount a compute resource token, in the order the IBM SDKs try them
/// (go-sdk-core's `ContainerAuthenticator`).
pub const CR_TOKEN_PATHS: &[&str] = &[
    "/var/run/secrets/tokens/vault-token",
    "/var/run/secrets/tokens/sa-token",
    "/var/run/secrets/codeengine.cloud.ibm.com/compute-resource-token/token",
];

/// A profile's IBM settings, validated. No credential reaches `Debug`.
pub struct IbmSettings {
    /// `AVP_IBM_INSTANCE_URL`, else `VAULT_ADDR` (AVP's fallback).
    pub instance: Url,
    /// `IBMCLOUD_IAM_API_ENDPOINT`, else [`DEFAULT_IAM`].
    pub iam: Url,
    pub credential: Credential,
    pub http: reqwest::Client,
}

/// What IAM exchanges for a token.
pub enum Credential {
    /// `AVP_IBM_API_KEY`: a service ID's API key.
    ApiKey(String),
    /// A trusted profile (`AVP_IBM_TRUSTED_PROFILE_ID` or `_NAME`) that the pod's compute
    /// resource token may assume: `AVP_IBM_CR_TOKEN_PATH`, else the first of
    /// [`CR_TOKEN_PATHS`] that exists.
    TrustedProfile {
        profile: Profile,
        token_path: Option<String>,
    },
}

/// A trusted profile, by id or by name, as IAM's `profile_id` / `profile_name` fields take it.
pub enum Profile {
    Id(String),
    Name(String),
}

impl fmt::Debug for IbmSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IbmSettings")
            .field("instance", &self.instance.as_str())
            .field("iam", &self.iam.as_str())
            .field("credential", &self.credential.describe())
            .finish_non_exhaustive()
    }
}

impl Credential {
    /// How the credential is named in `doctor` and in hints, never its value.
    pub fn describe(&self) -> String {
        match self {
            Credential::ApiKey(_) => "the API key AVP_IBM_API_KEY".to_owned(),
            Credential::TrustedProfile { profile, .. } => match profile {
                Profile::Id(id) => format!("the trusted profile {id} (AVP_IBM_TRUSTED_PROFILE_ID)"),
                Profile::Name(name) => {
                    format!("the trusted profile {name} (AVP_IBM_TRUSTED_PROFILE_NAME)")
                }
            },
        }
    }
}

impl IbmSettings {
    pub fn parse(settings: &Settings) -> anyhow::Result<IbmSettings> {
        let get = |key| {
            settings.trimmed(key)
                .map(str::to_owned)
        };
        let Some((key, instance)) = ["AVP_IBM_INSTANCE_URL", "VAULT_ADDR"]
            .into_iter()
            .find_map(|key| get(key).map(|v| (key, v)))
        else {
            // AVP's wording, so users' searches still match.
            bail!("AVP_IBM_INSTANCE_URL or VAULT_ADDR required for IBM Secrets Manager");
        };
        let instance = url(key, &instance)?;
        let iam = url(
            "IBMCLOUD_IAM_API_ENDPOINT",
            &get("IBMCLOUD_IAM_API_ENDPOINT").unwrap_or_else(|| DEFAULT_IAM.to_owned()),
        )?;
        let profile = match (
            get("AVP_IBM_TRUSTED_PROFILE_ID"),
            get("AVP_IBM_TRUSTED_PROFILE_NAME"),
        ) {
            (Some(id), _) => Some(Profile::Id(id)),
            (None, Some(name)) => Some(Profile::Name(name)),
            (None, None) => None,
        };
        let credential = match (get("AVP_IBM_API_KEY"), profile) {
            (Some(_), Some(_)) => bail!(
                "AVP_IBM_API_KEY and a trusted profile (AVP_IBM_TRUSTED_PROFILE_ID or AVP_IBM_TRUSTED_PROFILE_NAME) are both set: set one"
            ),
            (Some(key), None) => Credential::ApiKey(key),
            (None, Some(profile)) => Credential::TrustedProfile {
                profile,
                token_path: get("AVP_IBM_CR_TOKEN_PATH"),
            },
            (None, None) => bail!(
                "AVP_IBM_API_KEY (or a trusted profile: AVP_IBM_TRUSTED_PROFILE_ID or AVP_IBM_TRUSTED_PROFILE_NAME) required for IBM Secrets Manager"
            ),
        };
        Ok(IbmSettings {
            instance,
            iam,
            credential,
            http: rest::client(rest::TIMEOUT)?,
        })
    }
}

/// An `http(s)` URL with a host; the error never quotes one that may carry a password.
fn url(key: &str, value: &str) -> anyhow::Result<Url> {
    let quoted = match value.contains('@') {
        true => String::new(),
        false => format!(" {value:?}"),
    };
    let url = Url::parse(value).map_err(|e| anyhow::anyhow!("{key}{quoted} is not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        bail!("{key}{quoted} is not an http(s) URL with a host");
    }
    if !url.username().is_empty() || url.password().is_some() {
        bail!("{key} holds user-info, which IBM Cloud does not use: remove it");
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> anyhow::Result<IbmSettings> {
        let env = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned()));
        IbmSettings::parse(&Settings::merge(env, &[]))
    }

    #[test]
    fn the_instance_falls_back_to_vault_addr_and_iam_to_ibm_clouds() {
        let s = parse(&[
            ("VAULT_ADDR", "https://x.eu-de.secrets-manager.appdomain.cloud"),
            ("AVP_IBM_API_KEY", "key-s3cr3t\n"),
        ])
        .unwrap();
        assert_eq!(
            s.instance.as_str(),
            "https://x.eu-de.secrets-manager.appdomain.cloud/"
        );
        assert_eq!(s.iam.as_str(), "https://iam.cloud.ibm.com/");
        assert!(matches!(&s.credential, Credential::ApiKey(k) if k == "key-s3cr3t"));
        assert!(!format!("{s:?}").contains("key-s3cr3t"));
    }

    #[test]
    fn missing_or_conflicting_settings_are_errors() {
        let err = parse(&[("AVP_IBM_API_KEY", "k")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "AVP_IBM_INSTANCE_URL or VAULT_ADDR required for IBM Secrets Manager"
        );
        let err = parse(&[("AVP_IBM_INSTANCE_URL", "https://sm.example")]).unwrap_err();
        assert!(err.to_string().starts_with("AVP_IBM_API_KEY (or a trusted profile"));
        let err = parse(&[
            ("AVP_IBM_INSTANCE_URL", "https://sm.example"),
            ("AVP_IBM_API_KEY", "k"),
            ("AVP_IBM_TRUSTED_PROFILE_NAME", "argocd"),
        ])
        .unwrap_err();
        assert!(err.to_string().ends_with("are both set: set one"));
        let err = parse(&[
            ("AVP_IBM_INSTANCE_URL", "https://user:pw-s3cr3t@sm.example"),
            ("AVP_IBM_API_KEY", "k"),
        ])
        .unwrap_err();
        assert!(!err.to_string().contains("pw-s3cr3t"), "{err}");
        let err = parse(&[
            ("AVP_IBM_INSTANCE_URL", "sm.example"),
            ("AVP_IBM_API_KEY", "k"),
        ])
        .unwrap_err();
        assert!(err.to_string().starts_with("AVP_IBM_INSTANCE_URL \"sm.example\" is not a URL"));
    }

    #[test]
    fn a_trusted_profile_id_wins_over_its_name() {
        let s = parse(&[
            ("AVP_IBM_INSTANCE_URL", "https://sm.example"),
            ("AVP_IBM_TRUSTED_PROFILE_ID", "Profile-1"),
            ("AVP_IBM_TRUSTED_PROFILE_NAME", "argocd"),
        ])
        .unwrap();
        assert!(matches!(
            &s.credential,
            Credential::TrustedProfile { profile: Profile::Id(id), token_path: None } if id == "Profile-1"
        ));
    }
}
