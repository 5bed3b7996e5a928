//! The settings of a `vault` profile: address, namespace, auth method, KV version, and the TLS
//! set-up of the one HTTP client every request goes through.

use std::fmt;
use std::net::ToSocketAddrs as _;
use std::time::Duration;

use anyhow::{Context as _, bail};
use base64::Engine as _;
use url::Url;

use super::auth::Auth;
use super::kv::KvVersion;
use crate::config::Settings;
use crate::setting_file;

/// AVP's default address.
const DEFAULT_ADDR: &str = "https://127.0.0.1:8200";

/// A profile's Vault settings, validated. No credential reaches `Debug`.
pub struct VaultSettings {
    /// `VAULT_ADDR` without user-info (which goes in a header, never in a message).
    pub base: Url,
    /// `VAULT_NAMESPACE`: where secretsubst logs in, and the default for reads.
    pub namespace: Option<String>,
    pub auth: Auth,
    /// `AVP_KV_VERSION`; `None` detects it per mount.
    pub kv_version: Option<KvVersion>,
    /// TLS from `VAULT_CACERT`, `VAULT_CAPATH`, `VAULT_CLIENT_CERT`/`KEY`,
    /// `VAULT_TLS_SERVER_NAME`, `VAULT_SKIP_VERIFY`; timeout from `VAULT_CLIENT_TIMEOUT`.
    pub http: reqwest::Client,
    /// What identifies the login for the token cache: address, namespace, mount, principal and
    /// a fingerprint of the credential.
    pub identity: Vec<String>,
}

impl fmt::Debug for VaultSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultSettings")
            .field("base", &self.base.as_str())
            .field("namespace", &self.namespace)
            .field("auth", &self.auth.mount())
            .field("kv_version", &self.kv_version)
            .finish_non_exhaustive()
    }
}

impl VaultSettings {
    pub fn parse(settings: &Settings) -> anyhow::Result<VaultSettings> {
        let address = settings.get("VAULT_ADDR").unwrap_or(DEFAULT_ADDR).trim();
        // The error never quotes an address that may carry a password.
        let address = Url::parse(address).map_err(|e| match address.contains('@') {
            true => anyhow::anyhow!("VAULT_ADDR is not a URL ({e})"),
            false => anyhow::anyhow!("VAULT_ADDR {address:?} is not a URL ({e})"),
        })?;
        let namespace = header_setting(settings, "VAULT_NAMESPACE")?;
        let auth = Auth::from_settings(settings)?;
        let kv_version = match settings.get("AVP_KV_VERSION").map(str::trim) {
            None => None,
            Some("1") => Some(KvVersion::V1),
            Some("2") => Some(KvVersion::V2),
            Some(other) => bail!("AVP_KV_VERSION must be 1 or 2, got {other:?}"),
        };
        let (http, base) = http_client(settings, &address)?;
        let identity = match &auth {
            Auth::Token(_) => Vec::new(),
            auth => vec![
                address.as_str().to_owned(),
                namespace.clone().unwrap_or_default(),
                auth.mount(),
                auth.principal(),
                auth.credential(settings),
            ],
        };
        Ok(VaultSettings {
            base,
            namespace,
            auth,
            kv_version,
            http,
            identity,
        })
    }
}

/// A setting that goes into an HTTP header: surrounding whitespace (a token file's final line
/// break) is dropped, as the Vault CLI drops it; a control character left inside is an error.
pub fn header_setting(settings: &Settings, key: &str) -> anyhow::Result<Option<String>> {
    let Some(value) = settings.trimmed(key) else {
        return Ok(None);
    };
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        bail!("{key} holds the character {c:?}, which cannot be sent in an HTTP header");
    }
    Ok(Some(value.to_owned()))
}

/// The HTTP client for every request, and the base URL to send them to.
fn http_client(settings: &Settings, address: &Url) -> anyhow::Result<(reqwest::Client, Url)> {
    let mut builder = reqwest::Client::builder().tls_backend_rustls().timeout(
        settings
            .duration("VAULT_CLIENT_TIMEOUT")?
            .unwrap_or(Duration::from_secs(60)),
    );
    if settings.get("VAULT_SKIP_VERIFY").is_some_and(truthy) {
        builder = builder.tls_danger_accept_invalid_certs(true);
    }
    if let Some(file) = settings.get("VAULT_CACERT") {
        builder = builder.tls_certs_merge(read_certificates(file)?);
    }
    if let Some(dir) = settings.get("VAULT_CAPATH") {
        let entries =
            std::fs::read_dir(dir).with_context(|| format!("VAULT_CAPATH {dir}: cannot read"))?;
        for entry in entries {
            let path = entry
                .with_context(|| format!("VAULT_CAPATH {dir}: cannot read"))?
                .path();
            if path.is_file() {
                builder = builder.tls_certs_merge(read_certificates(&path.display().to_string())?);
            }
        }
    }
    match (
        settings.get("VAULT_CLIENT_CERT"),
        settings.get("VAULT_CLIENT_KEY"),
    ) {
        (Some(cert), Some(key)) => {
            let mut pem = setting_file::read(cert, setting_file::MAX_SMALL)
                .with_context(|| format!("VAULT_CLIENT_CERT {cert}: cannot read"))?;
            pem.push(b'\n');
            pem.extend(
                setting_file::read(key, setting_file::MAX_SMALL)
                    .with_context(|| format!("VAULT_CLIENT_KEY {key}: cannot read"))?,
            );
            let identity = reqwest::Identity::from_pem(&pem)
                .context("VAULT_CLIENT_CERT and VAULT_CLIENT_KEY do not hold a PEM certificate and private key")?;
            builder = builder.identity(identity);
        }
        (None, None) => {}
        _ => bail!("VAULT_CLIENT_CERT and VAULT_CLIENT_KEY must be set together"),
    }
    // User-info in VAULT_ADDR goes in a header, so that no URL in a message carries it.
    let mut base = address.clone();
    if !address.username().is_empty() || address.password().is_some() {
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        let user = decode(address.username());
        let password = decode(address.password().unwrap_or(""));
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        let mut value = reqwest::header::HeaderValue::from_str(&format!("Basic {basic}"))
            .context("VAULT_ADDR holds user-info that cannot be sent in an HTTP header")?;
        value.set_sensitive(true);
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(reqwest::header::AUTHORIZATION, value);
        builder = builder.default_headers(headers);
        let _ = base.set_username("");
        let _ = base.set_password(None);
    }
    if let Some(name) = settings.get("VAULT_TLS_SERVER_NAME") {
        // Connect to the address, but verify the certificate (and send SNI) for `name`.
        let host = address.host_str().context("VAULT_ADDR has no host")?;
        let port = address.port_or_known_default().unwrap_or(8200);
        let target = (host, port)
            .to_socket_addrs()
            .with_context(|| format!("cannot resolve {host}"))?
            .next()
            .with_context(|| format!("{host} has no address"))?;
        builder = builder.resolve(name, target);
        base.set_host(Some(name))
            .context("VAULT_TLS_SERVER_NAME is not a host name")?;
    }
    let http = builder
        .build()
        .context("cannot set up the HTTP client for Vault")?;
    Ok((http, base))
}

fn read_certificates(file: &str) -> anyhow::Result<Vec<reqwest::Certificate>> {
    let pem = setting_file::read(file, setting_file::MAX_SMALL)
        .with_context(|| format!("CA certificate {file}: cannot read"))?;
    reqwest::Certificate::from_pem_bundle(&pem)
        .with_context(|| format!("CA certificate {file}: not PEM"))
}

/// Go's `strconv.ParseBool` true values, which Vault's client uses for `VAULT_SKIP_VERIFY`.
fn truthy(value: &str) -> bool {
    matches!(value.trim(), "1" | "t" | "T" | "TRUE" | "true" | "True")
}
