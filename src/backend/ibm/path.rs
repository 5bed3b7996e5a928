//! AVP's two path forms, the secret types, and the fields each type's answer gives.
//!
//! `ibmcloud/<type>/secrets/groups/<group>`: each key is a secret's name, and its value is the
//! payload (arbitrary) or a map of the secret's fields. `ibmcloud/<type>/secrets/groups/<group>/<name>`:
//! each key is a field of that one secret.
//!
//! Fields per type: <https://cloud.ibm.com/apidocs/secrets-manager/secrets-manager-v2#get-secret>.

use std::sync::LazyLock;

use regex::Regex;

use crate::backend::{BackendError, ErrorKind};
use crate::error::excerpt;
use crate::secret::SecretData;
use crate::value::Value;

/// AVP's regex, unanchored as AVP matches it.
static PATH: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"ibmcloud/(?P<type>.+)/secrets/groups/(?P<group>[^/\n]+)(/(?P<name>.+))?")
        .expect("valid regex")
});

/// A secret group's id (ids are lower-case, as AVP matches them): a group named so is used as
/// it is, with no look-up.
static GROUP_ID: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(default|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$")
        .expect("valid regex")
});

/// The secret types AVP reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Arbitrary,
    UsernamePassword,
    ImportedCert,
    PublicCert,
    PrivateCert,
    IamCredentials,
    Kv,
}

const KINDS: &[Kind] = &[
    Kind::Arbitrary,
    Kind::UsernamePassword,
    Kind::ImportedCert,
    Kind::PublicCert,
    Kind::PrivateCert,
    Kind::IamCredentials,
    Kind::Kv,
];

impl Kind {
    /// The API's `secret_type`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Arbitrary => "arbitrary",
            Kind::UsernamePassword => "username_password",
            Kind::ImportedCert => "imported_cert",
            Kind::PublicCert => "public_cert",
            Kind::PrivateCert => "private_cert",
            Kind::IamCredentials => "iam_credentials",
            Kind::Kv => "kv",
        }
    }

    /// The fields of a secret (or version) of this type that hold its data.
    fn fields(self) -> &'static [&'static str] {
        match self {
            Kind::Arbitrary => &["payload"],
            Kind::UsernamePassword => &["username", "password"],
            Kind::ImportedCert | Kind::PublicCert => &["certificate", "private_key", "intermediate"],
            Kind::PrivateCert => &[
                "certificate",
                "private_key",
                "intermediate",
                "issuing_ca",
                "ca_chain",
            ],
            Kind::IamCredentials => &["api_key"],
            Kind::Kv => &[],
        }
    }

    /// The data of a secret or version as read from its answer: the type's fields, or a kv
    /// secret's `data` keys (typed, as stored).
    pub fn data(self, mut answer: serde_json::Map<String, serde_json::Value>) -> SecretData {
        let present = |v: &serde_json::Value| !v.is_null();
        match self {
            Kind::Kv => match answer.remove("data") {
                Some(serde_json::Value::Object(data)) => data
                    .into_iter()
                    .map(|(k, v)| (k, Value::from(v)))
                    .collect(),
                _ => SecretData::new(),
            },
            kind => kind
                .fields()
                .iter()
                .filter_map(|field| {
                    let value = answer.remove(*field).filter(present)?;
                    Some(((*field).to_owned(), Value::from(value)))
                })
                .collect(),
        }
    }

    /// A secret's value under its name in the group form: an arbitrary secret's payload, any
    /// other type's fields as a map.
    pub fn group_value(self, mut data: SecretData) -> Value {
        match self {
            Kind::Arbitrary => data.remove("payload").unwrap_or(Value::Null),
            _ => Value::Map(data),
        }
    }
}

/// A parsed placeholder path.
#[derive(Debug, PartialEq, Eq)]
pub struct IbmPath {
    pub kind: Kind,
    /// As written: `default`, a group id, or a group's name.
    pub group: String,
    /// The secret of the single-secret form.
    pub name: Option<String>,
}

impl IbmPath {
    pub fn parse(path: &str) -> Result<IbmPath, BackendError> {
        let invalid = |message: String| BackendError::new(ErrorKind::InvalidConfig, message);
        // AVP's wording, so users' searches still match.
        let Some(caps) = PATH.captures(path) else {
            return Err(invalid(format!(
                "Path is not in the correct format (ibmcloud/$TYPE/secrets/groups/$GROUP) for IBM Secrets Manager: {}",
                excerpt(path)
            )));
        };
        let kind_name = &caps["type"];
        let name = caps.name("name").map(|m| m.as_str().to_owned());
        if kind_name == "arbitrary" && name.is_some() {
            return Err(invalid(format!(
                "The 'ibmcloud/$TYPE/secrets/groups/$GROUP/$SECRET' path format is not supported for arbitrary secrets: {}",
                excerpt(path)
            )));
        }
        let Some(kind) = KINDS.iter().copied().find(|k| k.name() == kind_name) else {
            let supported: Vec<&str> = KINDS.iter().map(|k| k.name()).collect();
            return Err(invalid(format!(
                "secret type {:?} is not one secretsubst reads from IBM Secrets Manager (supported: {}): {}",
                excerpt(kind_name),
                supported.join(", "),
                excerpt(path)
            )));
        };
        Ok(IbmPath {
            kind,
            group: caps["group"].to_owned(),
            name,
        })
    }

    /// Whether the group is named by its id (`default` or a UUID), so that no look-up is needed.
    pub fn group_is_id(&self) -> bool {
        GROUP_ID.is_match(&self.group)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        match value {
            serde_json::Value::Object(map) => map,
            _ => unreachable!("an object"),
        }
    }

    #[test]
    fn both_forms_parse_with_avps_regex() {
        let group = IbmPath::parse("ibmcloud/arbitrary/secrets/groups/default").unwrap();
        assert_eq!(
            group,
            IbmPath {
                kind: Kind::Arbitrary,
                group: "default".into(),
                name: None
            }
        );
        let one = IbmPath::parse("ibmcloud/kv/secrets/groups/team-a/db/primary").unwrap();
        assert_eq!((one.kind, one.group.as_str()), (Kind::Kv, "team-a"));
        assert_eq!(one.name.as_deref(), Some("db/primary"));
        assert!(!one.group_is_id());
        let by_id =
            IbmPath::parse("ibmcloud/kv/secrets/groups/d898bb90-82f6-4d61-b5cc-b079b66cfa76").unwrap();
        assert!(by_id.group_is_id());
    }

    #[test]
    fn bad_paths_get_avps_errors() {
        let err = IbmPath::parse("secret/data/app").unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidConfig);
        assert_eq!(
            err.message,
            "Path is not in the correct format (ibmcloud/$TYPE/secrets/groups/$GROUP) for IBM Secrets Manager: secret/data/app"
        );
        let err = IbmPath::parse("ibmcloud/arbitrary/secrets/groups/default/x").unwrap_err();
        assert_eq!(
            err.message,
            "The 'ibmcloud/$TYPE/secrets/groups/$GROUP/$SECRET' path format is not supported for arbitrary secrets: ibmcloud/arbitrary/secrets/groups/default/x"
        );
        let err = IbmPath::parse("ibmcloud/service_credentials/secrets/groups/default").unwrap_err();
        assert!(
            err.message
                .starts_with("secret type \"service_credentials\" is not one secretsubst reads"),
            "{}",
            err.message
        );
    }

    #[test]
    fn each_type_gives_its_fields() {
        let cert = Kind::PrivateCert.data(object(json!({
            "name": "c", "certificate": "C", "private_key": "K", "issuing_ca": "I",
            "ca_chain": ["A", "B"], "intermediate": null
        })));
        assert_eq!(
            cert.keys().collect::<Vec<_>>(),
            ["ca_chain", "certificate", "issuing_ca", "private_key"]
        );
        assert!(cert["ca_chain"] == Value::List(vec!["A".into(), "B".into()]));
        let kv = Kind::Kv.data(object(json!({"name": "k", "data": {"port": 5432, "on": true}})));
        assert_eq!(kv["port"].to_text(), "5432");
        let arbitrary = Kind::Arbitrary.data(object(json!({"payload": "p", "name": "a"})));
        assert!(Kind::Arbitrary.group_value(arbitrary) == Value::from("p"));
        let user = Kind::UsernamePassword.data(object(json!({"username": "u", "password": "p"})));
        assert!(matches!(Kind::UsernamePassword.group_value(user), Value::Map(m) if m.len() == 2));
    }
}
