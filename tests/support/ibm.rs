//! An IBM Cloud test server on 127.0.0.1: IAM's token exchange and the Secrets Manager v2 reads
//! secretsubst makes, with the documented bodies, on one port (tests point both
//! `IBMCLOUD_IAM_API_ENDPOINT` and `AVP_IBM_INSTANCE_URL` at it).
//!
//! Secrets keep their versions; as the service does, only the current and the previous version
//! keep their data (<https://cloud.ibm.com/docs/secrets-manager?topic=secrets-manager-version-history>).
//! Errors follow the v2 error model, `{"errors": [{"code", "message"}], "status_code", "trace"}`
//! (<https://cloud.ibm.com/apidocs/secrets-manager/secrets-manager-v2#error-handling>), and IAM's
//! `{"errorCode", "errorMessage", "context"}`.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Value, json};

use super::http::{HttpServer, Reply, Request};

/// A service ID's API key with access to the instance.
pub const API_KEY: &str = "ibm-api-key-s3cr3t";
/// A valid API key whose service ID has no access policy on the instance.
pub const NO_ACCESS_KEY: &str = "ibm-no-access-key-s3cr3t";
/// The compute resource token a pod of the trusted cluster holds.
pub const CR_TOKEN: &str = "ibm-cr-token-s3cr3t";
/// The trusted profile that trusts it.
pub const PROFILE_ID: &str = "Profile-8a1d3c2e-0f4b-4c5d-9e6f-7a8b9c0d1e2f";
pub const PROFILE_NAME: &str = "argocd-repo-server";
const CREATED: &str = "2026-04-12T23:20:50.520Z";

struct Version {
    id: String,
    /// The type's fields (`payload`, `username`, `data`, …).
    fields: Value,
    /// Set by [`IbmServer::forget`]: the service no longer holds this version's data.
    forgotten: bool,
}

struct Secret {
    id: String,
    name: String,
    group: String,
    kind: String,
    versions: Vec<Version>,
}

#[derive(Default)]
struct State {
    /// (id, name) of each group besides `default`.
    groups: Vec<(String, String)>,
    secrets: Vec<Secret>,
    /// Names of secrets every token is refused.
    denied: HashSet<String>,
    /// Issued tokens and whether they may read the instance.
    tokens: Vec<(String, bool)>,
    ids: usize,
}

impl State {
    /// A UUID of its own.
    fn uuid(&mut self) -> String {
        self.ids += 1;
        format!("{:08x}-5ebc-4b9b-b9b9-{:012x}", 0x0b49_ad24_u32, self.ids)
    }
}

pub struct IbmServer {
    server: HttpServer,
    state: Arc<Mutex<State>>,
}

impl IbmServer {
    pub fn start() -> IbmServer {
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let server = HttpServer::start(move |req| {
            answer(req, &mut shared.lock().unwrap_or_else(|e| e.into_inner()))
        });
        IbmServer { server, state }
    }

    /// Adds a secret group named `name`; returns its id.
    pub fn group(&self, name: &str) -> String {
        let mut state = self.lock();
        let id = state.uuid();
        state.groups.push((id.clone(), name.to_owned()));
        id
    }

    /// Stores a new version of secret `name` of type `kind` in group `group` (an id or
    /// `default`), with the type's `fields`; returns (secret id, version id).
    pub fn put(&self, group: &str, kind: &str, name: &str, fields: Value) -> (String, String) {
        let mut state = self.lock();
        let version = state.uuid();
        let existing = state
            .secrets
            .iter()
            .position(|s| s.group == group && s.kind == kind && s.name == name);
        let index = match existing {
            Some(index) => index,
            None => {
                let id = state.uuid();
                state.secrets.push(Secret {
                    id,
                    name: name.to_owned(),
                    group: group.to_owned(),
                    kind: kind.to_owned(),
                    versions: Vec::new(),
                });
                state.secrets.len() - 1
            }
        };
        let secret = &mut state.secrets[index];
        secret.versions.push(Version {
            id: version.clone(),
            fields,
            forgotten: false,
        });
        (secret.id.clone(), version)
    }

    /// Every read of secret `name` is refused (403), as for a service ID without access to it.
    pub fn deny(&self, name: &str) {
        self.lock().denied.insert(name.to_owned());
    }

    /// The data of version `index` (from 0) of secret `name` is gone, as an `iam_credentials`
    /// secret's API key once its lease ended.
    pub fn forget(&self, name: &str, index: usize) {
        let mut state = self.lock();
        let secret = state
            .secrets
            .iter_mut()
            .find(|s| s.name == name)
            .expect("a secret");
        secret.versions[index].forgotten = true;
    }

    /// The next `n` requests whose path starts with `path_prefix` get `status` with the v2
    /// error body (and `Retry-After: SECONDS`).
    pub fn fail_next(&self, path_prefix: &str, n: usize, status: u16, retry_after: Option<u64>) {
        let mut reply = error(status, status_code(status), status_message(status));
        if let Some(seconds) = retry_after {
            reply = reply.with_header("retry-after", &seconds.to_string());
        }
        self.server.fail_next(path_prefix, n, reply);
    }

    /// `http://127.0.0.1:PORT`, IAM and Secrets Manager alike.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The settings of a run against this server with [`API_KEY`].
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("AVP_TYPE".into(), "ibmsecretsmanager".into()),
            ("AVP_IBM_INSTANCE_URL".into(), self.url()),
            ("IBMCLOUD_IAM_API_ENDPOINT".into(), self.url()),
            ("AVP_IBM_API_KEY".into(), API_KEY.into()),
        ]
    }

    /// The underlying server: request log and counts.
    pub fn http(&self) -> &HttpServer {
        &self.server
    }

    /// Requests with this method whose path starts with `path_prefix`.
    pub fn count(&self, method: &str, path_prefix: &str) -> usize {
        self.server.count(method, path_prefix)
    }

    /// Token exchanges, secret group listings, secret listings, and reads of secrets (their
    /// versions included).
    pub fn counts(&self) -> [usize; 4] {
        let requests = self.server.requests();
        let count = |f: &dyn Fn(&Request) -> bool| requests.iter().filter(|r| f(r)).count();
        [
            count(&|r| r.method == "POST" && r.path == "/identity/token"),
            count(&|r| r.method == "GET" && r.path == "/api/v2/secret_groups"),
            count(&|r| r.method == "GET" && r.path == "/api/v2/secrets"),
            count(&|r| r.method == "GET" && r.path.starts_with("/api/v2/secrets/")),
        ]
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn status_code(status: u16) -> &'static str {
    match status {
        400 => "bad_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        429 => "too_many_requests",
        503 => "service_unavailable",
        _ => "internal_server_error",
    }
}

fn status_message(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        503 => "Service Unavailable",
        _ => "Internal Server Error",
    }
}

/// The v2 error model.
fn error(status: u16, code: &str, message: &str) -> Reply {
    Reply::json(
        status,
        json!({
            "errors": [{"code": code, "message": message}],
            "status_code": status,
            "trace": "8bc6e1d5-4f0a-4a51-b4a5-1d8f2b7c9e31"
        }),
    )
}

/// IAM's error body. BXNIM0415E is IAM's documented answer to an unknown API key; the other
/// codes here stand for IAM's other refusals, whose exact codes secretsubst does not read.
fn iam_error(status: u16, code: &str, message: &str) -> Reply {
    Reply::json(
        status,
        json!({
            "errorCode": code,
            "errorMessage": message,
            "context": {"requestId": "c2ab1b4e-7f41-4e8b-9f3c-0d2b5a6e7f80", "requestType": "incoming.OIDC_Token"}
        }),
    )
}

fn answer(req: &Request, st: &mut State) -> Reply {
    if req.method == "POST" && req.path == "/identity/token" {
        return token(req, st);
    }
    let access = req
        .bearer()
        .and_then(|t| st.tokens.iter().find(|(issued, _)| issued == t))
        .map(|(_, access)| *access);
    match access {
        None => return error(401, "unauthorized", "Unauthorized"),
        Some(false) => return error(403, "forbidden", "Forbidden"),
        Some(true) => {}
    }
    let parts: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
    match (req.method.as_str(), parts.as_slice()) {
        ("GET", ["api", "v2", "secret_groups"]) => secret_groups(st),
        ("GET", ["api", "v2", "secrets"]) => list(req, st),
        ("GET", ["api", "v2", "secrets", id]) => secret(st, id, None),
        ("GET", ["api", "v2", "secrets", id, "versions", version]) => secret(st, id, Some(version)),
        _ => error(404, "not_found", "Not Found"),
    }
}

// https://cloud.ibm.com/apidocs/iam-identity-token-api#gettoken-apikey
// https://cloud.ibm.com/apidocs/iam-identity-token-api#gettoken-crtoken
fn token(req: &Request, st: &mut State) -> Reply {
    if req.header("content-type") != Some("application/x-www-form-urlencoded") {
        return iam_error(
            400,
            "BXNIM0109E",
            "Property missing or empty. Property name: grant_type.",
        );
    }
    let form = req.form();
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let access = match field("grant_type") {
        Some("urn:ibm:params:oauth:grant-type:apikey") => match field("apikey") {
            Some(API_KEY) => true,
            Some(NO_ACCESS_KEY) => false,
            _ => return iam_error(400, "BXNIM0415E", "Provided API key could not be found."),
        },
        // The compute resource token must come with the profile that trusts it.
        Some("urn:ibm:params:oauth:grant-type:cr-token") => {
            let profile = field("profile_id") == Some(PROFILE_ID)
                || field("profile_name") == Some(PROFILE_NAME);
            if field("cr_token") != Some(CR_TOKEN) || !profile {
                return iam_error(
                    400,
                    "BXNIM0538E",
                    "The compute resource token is not authorized for the trusted profile.",
                );
            }
            true
        }
        _ => return iam_error(400, "BXNIM0104E", "Grant type not supported."),
    };
    let token = format!("iam-access-token-{}", st.tokens.len() + 1);
    st.tokens.push((token.clone(), access));
    Reply::json(
        200,
        json!({
            "access_token": token,
            "refresh_token": "not_supported",
            "ims_user_id": 118_1234,
            "token_type": "Bearer",
            "expires_in": 3600,
            "expiration": 1_776_000_000,
            "scope": "ibm openid"
        }),
    )
}

// https://cloud.ibm.com/apidocs/secrets-manager/secrets-manager-v2#list-secret-groups
fn secret_groups(st: &State) -> Reply {
    let groups: Vec<Value> = st
        .groups
        .iter()
        .map(|(id, name)| {
            json!({
                "id": id, "name": name, "description": "Extended description for this group.",
                "created_at": CREATED, "created_by": "iam-ServiceId-e4a2f0a4-3c76-4bef-b1f2-fbeae11c0f21",
                "updated_at": CREATED
            })
        })
        .collect();
    Reply::json(
        200,
        json!({"secret_groups": groups, "total_count": st.groups.len()}),
    )
}

/// A secret's metadata, as listings give it.
fn metadata(secret: &Secret) -> Value {
    json!({
        "created_by": "iam-ServiceId-e4a2f0a4-3c76-4bef-b1f2-fbeae11c0f21",
        "created_at": CREATED,
        "crn": format!("crn:v1:bluemix:public:secrets-manager:us-south:a/791f5fb10986423e97aa8512f18b7e65:b49ad24d-81d4-5ebc-b9b9-b0937d1c84d5:secret:{}", secret.id),
        "downloaded": true,
        "id": secret.id,
        "labels": [],
        "locks_total": 0,
        "name": secret.name,
        "secret_group_id": secret.group,
        "secret_type": secret.kind,
        "state": 1,
        "state_description": "active",
        "updated_at": CREATED,
        "versions_total": secret.versions.len()
    })
}

// https://cloud.ibm.com/apidocs/secrets-manager/secrets-manager-v2#list-secrets
fn list(req: &Request, st: &State) -> Reply {
    let number = |name: &str, default: usize| match req.param(name) {
        None => Some(default),
        Some(v) => v.parse::<usize>().ok(),
    };
    let (Some(limit), Some(offset)) = (number("limit", 200), number("offset", 0)) else {
        return error(
            400,
            "bad_request",
            "Bad Request: limit and offset must be integers",
        );
    };
    if !(1..=1000).contains(&limit) {
        return error(
            400,
            "bad_request",
            "Bad Request: limit must be between 1 and 1000",
        );
    }
    let filter = |name: &str| {
        req.param(name)
            .map(|v| v.split(',').map(str::to_owned).collect::<Vec<_>>())
    };
    let (groups, types) = (filter("groups"), filter("secret_types"));
    let matching: Vec<&Secret> = st
        .secrets
        .iter()
        .filter(|s| groups.as_ref().is_none_or(|g| g.contains(&s.group)))
        .filter(|s| types.as_ref().is_none_or(|t| t.contains(&s.kind)))
        .collect();
    let total = matching.len();
    let page: Vec<Value> = matching
        .iter()
        .skip(offset)
        .take(limit)
        .map(|s| metadata(s))
        .collect();
    let href = |offset: usize| json!({"href": format!("{}/api/v2/secrets?limit={limit}&offset={offset}", "https://sm.example")});
    let mut body = json!({
        "total_count": total,
        "limit": limit,
        "offset": offset,
        "first": href(0),
        "last": href(total.saturating_sub(1) / limit * limit),
        "secrets": page
    });
    if offset + limit < total {
        body["next"] = href(offset + limit);
    }
    if offset > 0 {
        body["previous"] = href(offset.saturating_sub(limit));
    }
    Reply::json(200, body)
}

// https://cloud.ibm.com/apidocs/secrets-manager/secrets-manager-v2#get-secret
// https://cloud.ibm.com/apidocs/secrets-manager/secrets-manager-v2#get-secret-version
fn secret(st: &State, id: &str, version: Option<&str>) -> Reply {
    let Some(secret) = st.secrets.iter().find(|s| s.id == id) else {
        return error(404, "not_found", "Secret not found");
    };
    if st.denied.contains(&secret.name) {
        return error(403, "forbidden", "Forbidden");
    }
    let last = secret.versions.len() - 1;
    let index = match version {
        None | Some("current") => Some(last),
        Some("previous") => last.checked_sub(1),
        Some(v) => secret.versions.iter().position(|x| x.id == v),
    };
    let Some(index) = index else {
        return error(404, "not_found", "Secret version not found");
    };
    let chosen = &secret.versions[index];
    // The service keeps the data of the current and the previous version only.
    let available = !chosen.forgotten && index + 1 >= last;
    let mut body = match version {
        None => metadata(secret),
        Some(_) => {
            let mut body = json!({
                "auto_rotated": false,
                "created_by": "iam-ServiceId-e4a2f0a4-3c76-4bef-b1f2-fbeae11c0f21",
                "created_at": CREATED,
                "downloaded": true,
                "id": chosen.id,
                "secret_name": secret.name,
                "secret_type": secret.kind,
                "secret_group_id": secret.group,
                "payload_available": available,
                "secret_id": secret.id
            });
            if index == last {
                body["alias"] = json!("current");
            } else if index + 1 == last {
                body["alias"] = json!("previous");
            }
            body
        }
    };
    if available {
        for (k, v) in chosen.fields.as_object().expect("fields are an object") {
            body[k] = v.clone();
        }
    }
    Reply::json(200, body)
}
