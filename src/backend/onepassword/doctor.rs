//! `doctor`'s checks of a 1Password Connect profile: the server answers as Connect does, and the
//! token is accepted and can read vaults. Each failure comes with a hint naming the setting to
//! look at.

use super::OnePasswordBackend;
use super::connect::refusal;
use crate::backend::{BackendError, ErrorKind, Probe};

/// Vault names listed in the token check; more are counted.
const MAX_LISTED: usize = 10;

impl OnePasswordBackend {
    pub async fn doctor(&self) -> Vec<Probe> {
        let mut probes = vec![self.check_connect().await];
        if probes[0].outcome.is_ok() {
            probes.push(self.check_token().await);
        }
        probes
    }

    async fn check_connect(&self) -> Probe {
        let host = self.connect.host.as_str().trim_end_matches('/');
        match self.connect.heartbeat().await {
            Ok(true) => {}
            Ok(false) => {
                return Probe::failed(
                    "connect",
                    format!("{host} answers, but not as a Connect server does to /heartbeat"),
                    Some(
                        "is OP_CONNECT_HOST the URL of the Connect API (port 8080 by default), not of a proxy's page?"
                            .to_owned(),
                    ),
                );
            }
            Err(e) => return Probe::failed("connect", e.message.clone(), connect_hint(&e)),
        }
        match self.connect.health().await {
            Ok(health) => {
                let dependencies = health
                    .dependencies
                    .iter()
                    .map(|d| format!("{} {}", d.service, d.status))
                    .collect::<Vec<_>>()
                    .join(", ");
                let dependencies = match dependencies.is_empty() {
                    true => String::new(),
                    false => format!(" ({dependencies})"),
                };
                Probe::passed(
                    "connect",
                    format!(
                        "{host} answers: {} {}{dependencies}",
                        health.name, health.version
                    ),
                )
            }
            Err(e) => Probe::failed("connect", e.message.clone(), connect_hint(&e)),
        }
    }

    async fn check_token(&self) -> Probe {
        let what = "the vault listing";
        let vaults = match self.connect.vaults(None, what).await {
            Ok(Ok(vaults)) => vaults,
            Ok(Err(refused)) => {
                let hint = token_hint(refused.status);
                return Probe::failed("token", refusal(refused, what).message, hint);
            }
            Err(e) => return Probe::failed("token", e.message.clone(), connect_hint(&e)),
        };
        if vaults.is_empty() {
            return Probe::failed(
                "token",
                "the Connect token can read no vault",
                Some(SCOPE_HINT.to_owned()),
            );
        }
        let mut names: Vec<String> = vaults
            .iter()
            .take(MAX_LISTED)
            .map(|v| format!("{:?}", crate::error::excerpt(&v.name)))
            .collect();
        if vaults.len() > MAX_LISTED {
            names.push(format!("and {} more", vaults.len() - MAX_LISTED));
        }
        let count = match vaults.len() {
            1 => "1 vault".to_owned(),
            n => format!("{n} vaults"),
        };
        Probe::passed(
            "token",
            format!("accepted; it can read {count}: {}", names.join(", ")),
        )
    }
}

const SCOPE_HINT: &str = "the token's access is set when it is issued: issue one with the vaults the manifests read (op connect token create NAME --server SERVER --vault VAULT)";

/// What to look at when the token is refused with `status`.
fn token_hint(status: u16) -> Option<String> {
    let hint = match status {
        401 => {
            "OP_CONNECT_TOKEN is not valid for this Connect server: revoked, expired, or issued for another server"
        }
        403 => SCOPE_HINT,
        _ => return None,
    };
    Some(hint.to_owned())
}

/// What to look at when the server cannot be reached or answers otherwise than Connect.
fn connect_hint(error: &BackendError) -> Option<String> {
    let text = error.message.to_lowercase();
    let hint = if text.contains("connection refused") {
        "nothing listens at OP_CONNECT_HOST: check its host and port (the Connect API listens on 8080 by default)"
    } else if text.contains("dns error") || text.contains("failed to lookup address") {
        "the host of OP_CONNECT_HOST does not resolve: check the name (the Connect Service and its namespace) and the sidecar's DNS"
    } else if text.contains("corrupt message") || text.contains("invalidcontenttype") {
        "the server answered without TLS: OP_CONNECT_HOST says https:// where it speaks plain HTTP"
    } else if text.contains("certificate") || text.contains("unknownissuer") {
        "the server's certificate is not trusted by the system's roots: check OP_CONNECT_HOST's host name and the CA that signed the certificate"
    } else if error.kind == ErrorKind::Transient {
        "check OP_CONNECT_HOST, and that the repo-server can reach it (NetworkPolicy, HTTPS_PROXY)"
    } else {
        "is OP_CONNECT_HOST the URL of the Connect API (port 8080 by default), not of a proxy's page?"
    };
    Some(hint.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_failures_get_the_hint_of_their_cause() {
        let hint = |kind, message: &str| connect_hint(&BackendError::new(kind, message)).unwrap();
        let transient = ErrorKind::Transient;
        assert!(hint(transient, "cannot reach 1Password Connect for the heartbeat: client error (Connect): tcp connect error: Connection refused (os error 111)").starts_with("nothing listens"));
        assert!(hint(transient, "cannot reach 1Password Connect: dns error: failed to lookup address information").contains("does not resolve"));
        assert!(hint(transient, "cannot reach 1Password Connect: received corrupt message of type InvalidContentType").starts_with("the server answered without TLS"));
        assert!(hint(transient, "503 service unavailable: the heartbeat").starts_with("check OP_CONNECT_HOST"));
        assert!(hint(ErrorKind::NotFound, "404 not found: the heartbeat").starts_with("is OP_CONNECT_HOST"));
    }
}
