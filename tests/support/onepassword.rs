//! A 1Password Connect test server: vaults holding items, and tokens that may read some vaults,
//! behind the routes of the Connect API with its documented bodies. Plain HTTP on 127.0.0.1.
//!
//! API reference: <https://developer.1password.com/docs/connect/connect-api-reference/>, and the
//! OpenAPI file it links: <https://github.com/1Password/connect/blob/main/docs/openapi/spec.yaml>.
//! Errors are `{"status": N, "message": "…"}`.

use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::json;

use super::http::{HttpServer, Reply, Request};

/// One field of an item.
#[derive(Clone)]
pub struct Field {
    pub label: String,
    /// `None`: the field holds nothing, and Connect leaves `value` out.
    pub value: Option<String>,
    /// The id of the section the field belongs to.
    pub section: Option<String>,
}

impl Field {
    pub fn new(label: &str, value: &str) -> Field {
        Field {
            label: label.to_owned(),
            value: Some(value.to_owned()),
            section: None,
        }
    }

    pub fn empty(label: &str) -> Field {
        Field {
            label: label.to_owned(),
            value: None,
            section: None,
        }
    }

    pub fn in_section(mut self, section: &str) -> Field {
        self.section = Some(section.to_owned());
        self
    }
}

struct Item {
    id: String,
    title: String,
    fields: Vec<Field>,
}

struct Vault {
    id: String,
    name: String,
    items: Vec<Item>,
}

#[derive(Default)]
struct State {
    vaults: Vec<Vault>,
    /// Each token and the ids of the vaults it may read (`None`: all of them).
    tokens: Vec<(String, Option<Vec<String>>)>,
    ids: usize,
}

impl State {
    /// A fresh id of Connect's form: 26 lower-case letters and digits.
    fn id(&mut self, kind: char) -> String {
        self.ids += 1;
        format!("{kind}{:025}", self.ids)
    }
}

pub struct ConnectServer {
    server: HttpServer,
    state: Arc<Mutex<State>>,
}

impl ConnectServer {
    pub fn start() -> ConnectServer {
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let server = HttpServer::start(move |req| {
            answer(req, &shared.lock().unwrap_or_else(|e| e.into_inner()))
        });
        ConnectServer { server, state }
    }

    /// `http://127.0.0.1:PORT`, what `OP_CONNECT_HOST` names.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The underlying server: request log and fault injection.
    pub fn http(&self) -> &HttpServer {
        &self.server
    }

    /// Adds a vault named `name` (names need not be unique); returns its id.
    pub fn vault(&self, name: &str) -> String {
        let mut state = self.lock();
        let id = state.id('v');
        state.vaults.push(Vault {
            id: id.clone(),
            name: name.to_owned(),
            items: Vec::new(),
        });
        id
    }

    /// The id of the first vault named `name`.
    pub fn vault_id(&self, name: &str) -> String {
        let state = self.lock();
        let vault = state.vaults.iter().find(|v| v.name == name);
        vault.expect("a vault of that name").id.clone()
    }

    /// Adds an item titled `title` (titles need not be unique) with these labels and values;
    /// returns its id.
    pub fn item(&self, vault: &str, title: &str, fields: &[(&str, &str)]) -> String {
        let fields = fields.iter().map(|(l, v)| Field::new(l, v)).collect();
        self.item_with(vault, title, fields)
    }

    pub fn item_with(&self, vault: &str, title: &str, fields: Vec<Field>) -> String {
        let mut state = self.lock();
        let id = state.id('i');
        let vault = state
            .vaults
            .iter_mut()
            .find(|v| v.id == vault)
            .expect("an existing vault");
        vault.items.push(Item {
            id: id.clone(),
            title: title.to_owned(),
            fields,
        });
        id
    }

    /// A token that may read the vaults of these ids.
    pub fn token(&self, token: &str, vaults: &[&str]) {
        let vaults = vaults.iter().map(|v| (*v).to_owned()).collect();
        self.lock().tokens.push((token.to_owned(), Some(vaults)));
    }

    /// A token that may read every vault.
    pub fn token_for_all(&self, token: &str) {
        self.lock().tokens.push((token.to_owned(), None));
    }

    /// The API requests so far (under `/v1/`), as `PATH` or `PATH?filter=FILTER` (decoded).
    pub fn api_requests(&self) -> Vec<String> {
        self.server
            .requests()
            .into_iter()
            .filter(|r| r.path.starts_with("/v1/"))
            .map(|r| match r.param("filter") {
                Some(filter) => format!("{}?filter={filter}", r.path),
                None => r.path,
            })
            .collect()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Connect's error body.
pub fn error(status: u16, message: &str) -> Reply {
    Reply::json(status, json!({"status": status, "message": message}))
}

fn is_id(text: &str) -> bool {
    text.len() == 26
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// The value of a SCIM filter `ATTRIBUTE eq "VALUE"`, `\"` and `\\` unescaped; `None` for any
/// other filter.
fn eq_value(filter: &str, attribute: &str) -> Option<String> {
    let quoted = filter
        .strip_prefix(attribute)?
        .strip_prefix(" eq \"")?
        .strip_suffix('"')?;
    let mut value = String::new();
    let mut chars = quoted.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next()? {
                escaped @ ('"' | '\\') => value.push(escaped),
                _ => return None,
            },
            '"' => return None,
            c => value.push(c),
        }
    }
    Some(value)
}

/// The filter of `req` on `attribute`: `Ok(None)` without one, `Err` for one Connect would not
/// take. (The reference documents no answer to a bad filter; this server says 400.)
fn filter_of(req: &Request, attribute: &str) -> Result<Option<String>, Reply> {
    match req.param("filter") {
        None => Ok(None),
        Some(filter) => match eq_value(&filter, attribute) {
            Some(value) => Ok(Some(value)),
            None => Err(error(400, "Invalid filter")),
        },
    }
}

const CREATED: &str = "2026-11-01T10:00:00Z";

fn answer(req: &Request, st: &State) -> Reply {
    let segments: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
    if req.method != "GET" {
        return error(405, "Method Not Allowed");
    }
    match segments.as_slice() {
        // GetHeartbeat, unauthenticated:
        // https://github.com/1Password/connect/blob/main/docs/openapi/spec.yaml
        ["heartbeat"] => Reply {
            status: 200,
            headers: vec![("content-type".into(), "text/plain".into())],
            body: ".".into(),
        },
        // GetServerHealth, unauthenticated:
        // https://github.com/1Password/connect/blob/main/docs/openapi/spec.yaml
        ["health"] => Reply::json(
            200,
            json!({
                "name": "1Password Connect API",
                "version": "1.7.1",
                "dependencies": [
                    {"service": "sqlite", "status": "ACTIVE", "message": "Connected to./1password.sqlite"},
                    {"service": "sync", "status": "ACTIVE"}
                ]
            }),
        ),
        ["v1", rest @ ..] => {
            let scope = st
                .tokens
                .iter()
                .find(|(token, _)| req.bearer() == Some(token))
                .map(|(_, scope)| scope);
            match scope {
                None => error(401, "Invalid token signature"),
                Some(scope) => api(req, st, rest, scope.as_deref()),
            }
        }
        _ => error(404, "Not Found"),
    }
}

/// The authenticated routes, for a token that may read `scope` (`None`: every vault).
fn api(req: &Request, st: &State, route: &[&str], scope: Option<&[String]>) -> Reply {
    let readable = |id: &str| scope.is_none_or(|ids| ids.iter().any(|v| v == id));
    match route {
        // https://developer.1password.com/docs/connect/connect-api-reference/#list-vaults
        ["vaults"] => {
            let name = match filter_of(req, "name") {
                Ok(name) => name,
                Err(reply) => return reply,
            };
            let vaults: Vec<serde_json::Value> = st
                .vaults
                .iter()
                .filter(|v| readable(&v.id))
                .filter(|v| name.as_ref().is_none_or(|n| *n == v.name))
                .map(vault_object)
                .collect();
            Reply::json(200, json!(vaults))
        }
        // https://developer.1password.com/docs/connect/connect-api-reference/#list-items
        ["vaults", vault, "items"] => {
            let vault = match find_vault(st, vault, &readable) {
                Ok(vault) => vault,
                Err(reply) => return reply,
            };
            let title = match filter_of(req, "title") {
                Ok(title) => title,
                Err(reply) => return reply,
            };
            let items: Vec<serde_json::Value> = vault
                .items
                .iter()
                .filter(|i| title.as_ref().is_none_or(|t| *t == i.title))
                .map(|i| item_object(vault, i))
                .collect();
            Reply::json(200, json!(items))
        }
        // https://developer.1password.com/docs/connect/connect-api-reference/#get-item-details
        ["vaults", vault, "items", item] => {
            let vault = match find_vault(st, vault, &readable) {
                Ok(vault) => vault,
                Err(reply) => return reply,
            };
            if !is_id(item) {
                return error(404, "Invalid Item UUID");
            }
            match vault.items.iter().find(|i| i.id == *item) {
                Some(found) => Reply::json(200, full_item(vault, found)),
                None => error(404, &format!("item {item} not found")),
            }
        }
        _ => error(404, "Not Found"),
    }
}

fn find_vault<'s>(
    st: &'s State,
    id: &str,
    readable: &dyn Fn(&str) -> bool,
) -> Result<&'s Vault, Reply> {
    if !is_id(id) {
        return Err(error(404, "Invalid Vault UUID"));
    }
    match st.vaults.iter().find(|v| v.id == id) {
        None => Err(error(404, &format!("vault {id} not found"))),
        Some(_) if !readable(id) => Err(error(403, &format!("vault {id} is not in scope"))),
        Some(vault) => Ok(vault),
    }
}

fn vault_object(vault: &Vault) -> serde_json::Value {
    json!({
        "id": vault.id,
        "name": vault.name,
        "description": "",
        "attributeVersion": 1,
        "contentVersion": vault.items.len() + 1,
        "items": vault.items.len(),
        "type": "USER_CREATED",
        "createdAt": CREATED,
        "updatedAt": CREATED
    })
}

fn item_object(vault: &Vault, item: &Item) -> serde_json::Value {
    json!({
        "id": item.id,
        "title": item.title,
        "vault": {"id": vault.id},
        "category": "LOGIN",
        "favorite": false,
        "tags": [],
        "version": 1,
        "createdAt": CREATED,
        "updatedAt": CREATED,
        "lastEditedBy": "mzmgyyuu5zzbfmbabhgbjxgbdq"
    })
}

fn full_item(vault: &Vault, item: &Item) -> serde_json::Value {
    let mut object = item_object(vault, item);
    let mut sections: Vec<&str> = item
        .fields
        .iter()
        .filter_map(|f| f.section.as_deref())
        .collect();
    sections.dedup();
    object["sections"] = json!(
        sections
            .iter()
            .map(|s| json!({"id": s, "label": s}))
            .collect::<Vec<_>>()
    );
    object["fields"] = json!(
        item.fields
            .iter()
            .enumerate()
            .map(|(n, f)| {
                let (kind, purpose) = match f.label.as_str() {
                    "username" => ("STRING", "USERNAME"),
                    "password" => ("CONCEALED", "PASSWORD"),
                    _ => ("STRING", ""),
                };
                let mut field = json!({"id": format!("field{n}"), "type": kind, "label": f.label});
                if !purpose.is_empty() {
                    field["purpose"] = json!(purpose);
                }
                if let Some(value) = &f.value {
                    field["value"] = json!(value);
                }
                if let Some(section) = &f.section {
                    field["section"] = json!({"id": section});
                }
                field
            })
            .collect::<Vec<_>>()
    );
    object
}
