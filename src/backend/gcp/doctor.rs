//! `doctor`'s checks of a Secret Manager profile: which Application Default Credentials are in
//! use, that they give an access token, and, when the project is known, that Secret Manager
//! accepts it. Each failure comes with a hint naming what to look at.

use percent_encoding::utf8_percent_encode;

use super::auth::{self, Credentials};
use super::{GcpBackend, SEGMENT, classify};
use crate::backend::{BackendError, ErrorKind, Probe};

const CREDENTIALS_HINT: &str = "GOOGLE_APPLICATION_CREDENTIALS must name a readable credentials JSON file (service_account, external_account or authorized_user); unset it on GKE to use Workload Identity through the metadata server";

impl GcpBackend {
    pub async fn doctor(&self) -> Vec<Probe> {
        let credentials = match &self.settings.credentials {
            Ok(credentials) => credentials,
            Err(e) => {
                return vec![Probe::failed(
                    "credentials",
                    e.message.clone(),
                    Some(CREDENTIALS_HINT.to_owned()),
                )];
            }
        };
        let mut probes = vec![Probe::passed("credentials", describe(credentials))];
        if let Err(e) = self.token().await {
            probes.push(Probe::failed("token", e.message.clone(), token_hint(credentials, &e)));
            return probes;
        }
        let project = match credentials {
            Credentials::Metadata { host } => auth::metadata(
                &self.http,
                host,
                "project/project-id",
                "the project id from the metadata server",
            )
            .await
            .ok()
            .and_then(|body| String::from_utf8(body).ok())
            .map(|p| p.trim().to_owned())
            .filter(|p| !p.is_empty()),
            other => other.project().map(str::to_owned),
        };
        let Some(project) = project else {
            probes.push(Probe::passed(
                "token",
                "an access token was issued; the credentials name no project, so nothing was listed",
            ));
            return probes;
        };
        probes.push(Probe::passed("token", "an access token was issued"));
        probes.push(self.list(&project).await);
        probes
    }

    /// `GET …/secrets?pageSize=1` in `project`
    /// (<https://cloud.google.com/secret-manager/docs/reference/rest/v1/projects.secrets/list>,
    /// <https://cloud.google.com/secret-manager/docs/reference/rest/v1/projects.locations.secrets/list>
    /// on a regional endpoint): the cheapest call that proves the token.
    async fn list(&self, project: &str) -> Probe {
        let mut parent = format!("projects/{}", utf8_percent_encode(project, SEGMENT));
        if let Some(location) = self.settings.location() {
            parent.push_str(&format!(
                "/locations/{}",
                utf8_percent_encode(location, SEGMENT)
            ));
        }
        let what = format!("the secrets of project {project}");
        let answer = match self.call(&format!("{parent}/secrets?pageSize=1"), &what).await {
            Ok(answer) => answer,
            Err(e) => return Probe::failed("access", e.message.clone(), endpoint_hint(&e)),
        };
        match answer {
            Ok(_) => Probe::passed(
                "access",
                format!("Secret Manager accepts the token in project {project}"),
            ),
            Err(refused) => {
                let e = classify::refusal(refused, &what);
                let disabled = e.message.contains("has not been used") || e.message.contains("SERVICE_DISABLED");
                match e.kind {
                    ErrorKind::PermissionDenied if e.message.starts_with("401") => Probe::failed(
                        "access",
                        e.message,
                        Some("Secret Manager refuses the token: check that AVP_GCP_ENDPOINT is Secret Manager's".to_owned()),
                    ),
                    ErrorKind::PermissionDenied if disabled => Probe::failed(
                        "access",
                        e.message,
                        Some(format!("enable the Secret Manager API (secretmanager.googleapis.com) in project {project}")),
                    ),
                    ErrorKind::PermissionDenied => Probe::passed(
                        "access",
                        format!("Secret Manager accepts the token in project {project} (listing secrets is denied, which reads do not need; they need roles/secretmanager.secretAccessor)"),
                    ),
                    _ => Probe::failed("access", e.message.clone(), endpoint_hint(&e)),
                }
            }
        }
    }
}

/// Which ADC source is in use, and whose identity it gives.
fn describe(credentials: &Credentials) -> String {
    match credentials {
        Credentials::ServiceAccount(sa) => {
            format!("service account {} from {}", sa.email, sa.origin)
        }
        Credentials::External(ext) => {
            let through = match ext.impersonates() {
                Some(sa) => format!(", impersonating {sa}"),
                None => String::new(),
            };
            format!(
                "external account {} with the subject token of {} from {}{through}",
                ext.audience,
                ext.subject.describe(),
                ext.origin
            )
        }
        Credentials::User(user) => format!(
            "authorized user (client_id {}) from {}",
            user.client_id, user.origin
        ),
        Credentials::Metadata { host } => format!(
            "the metadata server at {host} (no GOOGLE_APPLICATION_CREDENTIALS, no ~/{})",
            auth::GCLOUD_FILE
        ),
    }
}

/// What to look at when no token is issued.
fn token_hint(credentials: &Credentials, error: &BackendError) -> Option<String> {
    let hint = match credentials {
        Credentials::Metadata { .. } if error.kind == ErrorKind::Transient => {
            "the metadata server does not answer: outside GKE and GCE set GOOGLE_APPLICATION_CREDENTIALS; on GKE enable Workload Identity on the cluster and node pool (GCE_METADATA_HOST names another metadata server)".to_owned()
        }
        Credentials::Metadata { .. } => {
            "on GKE, annotate the repo-server's Kubernetes service account with iam.gke.io/gcp-service-account: GSA_EMAIL, and grant that Google service account roles/iam.workloadIdentityUser for serviceAccount:PROJECT.svc.id.goog[argocd/argocd-repo-server]".to_owned()
        }
        Credentials::ServiceAccount(sa) => format!(
            "the key in GOOGLE_APPLICATION_CREDENTIALS may be deleted or disabled, or {} gone: create a new key, and check the file's token_uri",
            sa.email
        ),
        Credentials::External(_) => "check that the workload identity pool provider (the file's audience) trusts the subject token's issuer, and that the federated identity holds roles/iam.workloadIdentityUser on the service account it impersonates".to_owned(),
        Credentials::User(_) => {
            "the refresh token may be revoked: run gcloud auth application-default login again, or set GOOGLE_APPLICATION_CREDENTIALS".to_owned()
        }
    };
    Some(hint)
}

/// What to look at when Secret Manager cannot be reached.
fn endpoint_hint(error: &BackendError) -> Option<String> {
    (error.kind == ErrorKind::Transient).then(|| {
        "check AVP_GCP_ENDPOINT, and that the repo-server can reach it (NetworkPolicy, HTTPS_PROXY)"
            .to_owned()
    })
}
