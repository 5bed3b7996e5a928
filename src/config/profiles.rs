//! Backend profiles: the default backend from the flat settings, and named ones from a
//! `backends` map, each with only its own settings.

use std::collections::BTreeMap;

use super::{ConfigError, Settings};

/// The name of the backend the flat settings define.
pub const DEFAULT_PROFILE: &str = "default";
/// The settings key holding the named profiles.
pub const BACKENDS_KEY: &str = "backends";
/// AWS ARNs start with `arn:`, so a profile of that name would capture them.
const RESERVED: &[(&str, &str)] = &[
    (
        DEFAULT_PROFILE,
        "it names the default backend (the flat settings)",
    ),
    ("arn", "AWS ARNs start with arn:"),
];
const MAX_NAME: usize = 63;

/// Profile names to their settings (keys upper-cased), as one source defines them.
pub type Backends = BTreeMap<String, BTreeMap<String, String>>;

/// Named profiles as merged from every source: each one's settings and where they came from.
pub type Named = BTreeMap<String, Layer>;

/// What one settings source holds: flat settings and named profiles.
#[derive(Clone, Debug, Default)]
pub struct Layer {
    /// Names the source in messages (`config file /etc/avp.yaml`, `Secret argocd/avp`).
    pub origin: String,
    pub settings: BTreeMap<String, String>,
    pub backends: Backends,
}

impl Layer {
    /// A source of flat settings only.
    pub fn flat(origin: impl Into<String>, settings: BTreeMap<String, String>) -> Layer {
        Layer {
            origin: origin.into(),
            settings,
            backends: Backends::new(),
        }
    }
}

/// One backend as configured; built only when a placeholder uses it.
#[derive(Clone, Debug)]
pub struct Profile {
    pub name: String,
    /// `AVP_TYPE` trimmed of whitespace and newlines (as AVP); `""` when unset.
    pub backend_type: String,
    pub settings: Settings,
}

/// Every configured profile, the default one included.
#[derive(Clone, Debug)]
pub struct Profiles {
    by_name: BTreeMap<String, Profile>,
}

impl Profiles {
    /// The default profile from `settings` and the named ones from `backends`. The default's
    /// limits are checked at once, as they always were; a named profile's only when it is used.
    pub fn new(settings: Settings, named: Named) -> Result<Profiles, ConfigError> {
        super::limits(&settings)?;
        let mut by_name = BTreeMap::new();
        by_name.insert(
            DEFAULT_PROFILE.to_owned(),
            Profile::new(DEFAULT_PROFILE, settings),
        );
        for (name, layer) in named {
            let profile = Profile::new(&name, Settings::merge(Vec::new(), &[layer]));
            by_name.insert(name, profile);
        }
        Ok(Profiles { by_name })
    }

    pub fn get(&self, name: &str) -> Option<&Profile> {
        self.by_name.get(name)
    }

    pub fn default_profile(&self) -> &Profile {
        &self.by_name[DEFAULT_PROFILE]
    }

    /// Whether named profiles exist: only then do placeholder prefixes select one, and do
    /// messages name the profile.
    pub fn configured(&self) -> bool {
        self.by_name.len() > 1
    }

    /// The profile a placeholder path's `NAME:` prefix selects, and the rest of the path. Only
    /// configured names count, so without profiles every path reads as in AVP.
    pub fn prefix<'p>(&self, path: &'p str) -> Option<(&Profile, &'p str)> {
        if !self.configured() {
            return None;
        }
        let (name, rest) = path.split_once(':')?;
        Some((self.by_name.get(name)?, rest))
    }

    /// The configured names, the default first, for error messages.
    pub fn names(&self) -> String {
        std::iter::once(DEFAULT_PROFILE)
            .chain(
                self.by_name
                    .keys()
                    .map(String::as_str)
                    .filter(|n| *n != DEFAULT_PROFILE),
            )
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl Profile {
    fn new(name: &str, settings: Settings) -> Profile {
        Profile {
            name: name.to_owned(),
            backend_type: settings.get("AVP_TYPE").unwrap_or("").trim().to_owned(),
            settings,
        }
    }
}

/// Merges the `backends` maps of the sources, highest priority first: a profile is taken whole
/// from the first source that defines it, never mixed from two.
pub fn merge(layers: &[Layer]) -> Named {
    let mut out = Named::new();
    for layer in layers {
        for (name, settings) in &layer.backends {
            out.entry(name.clone()).or_insert_with(|| {
                Layer::flat(
                    format!("{}: {BACKENDS_KEY}.{name}", layer.origin),
                    settings.clone(),
                )
            });
        }
    }
    out
}

/// Why `name` cannot name a profile: DNS-label syntax (lower-case letters, digits and `-`,
/// starting and ending with a letter or digit, at most 63 characters), and not reserved.
pub fn check_name(name: &str) -> Result<(), String> {
    if let Some((_, why)) = RESERVED.iter().find(|(reserved, _)| *reserved == name) {
        return Err(format!("the profile name {name:?} is reserved: {why}"));
    }
    let label = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = name.as_bytes();
    let valid = !bytes.is_empty()
        && bytes.len() <= MAX_NAME
        && bytes.iter().all(|&b| label(b) || b == b'-')
        && label(bytes[0])
        && label(bytes[bytes.len() - 1]);
    if !valid {
        return Err(format!(
            "{:?} is not a valid profile name: use lower-case letters, digits and '-', starting and ending with a letter or digit, at most {MAX_NAME} characters",
            crate::error::excerpt(name)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profiles(names: &[&str]) -> Profiles {
        let backends = names
            .iter()
            .map(|n| {
                let settings = [("AVP_TYPE".to_owned(), "file".to_owned())].into();
                ((*n).to_owned(), Layer::flat("test", settings))
            })
            .collect();
        Profiles::new(Settings::default(), backends).unwrap()
    }

    #[test]
    fn names_follow_dns_label_rules() {
        for good in ["a", "aws-prod", "team-2", &"x".repeat(63)] {
            assert_eq!(check_name(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "Aws",
            "a_b",
            "a.b",
            "a:b",
            "ä",
            &"x".repeat(64),
        ] {
            let err = check_name(bad).unwrap_err();
            assert!(err.contains("is not a valid profile name"), "{bad}: {err}");
        }
    }

    #[test]
    fn default_and_arn_are_reserved() {
        assert_eq!(
            check_name("default").unwrap_err(),
            "the profile name \"default\" is reserved: it names the default backend (the flat settings)"
        );
        assert_eq!(
            check_name("arn").unwrap_err(),
            "the profile name \"arn\" is reserved: AWS ARNs start with arn:"
        );
    }

    #[test]
    fn prefixes_select_only_configured_profiles() {
        let none = profiles(&[]);
        assert!(none.prefix("aws:secret").is_none());
        assert!(none.prefix("default:secret").is_none());
        let some = profiles(&["aws"]);
        let (profile, rest) = some.prefix("aws:db/creds").unwrap();
        assert_eq!((profile.name.as_str(), rest), ("aws", "db/creds"));
        assert_eq!(some.prefix("default:x").unwrap().0.name, "default");
        assert!(some.prefix("vault:x").is_none());
        assert!(
            some.prefix("arn:aws:secretsmanager:eu-west-1:1:secret:x")
                .is_none()
        );
        assert_eq!(some.names(), "default, aws");
    }

    #[test]
    fn the_first_source_defining_a_profile_wins_whole() {
        let layer = |region: &str| Layer {
            origin: format!("config {region}"),
            settings: BTreeMap::new(),
            backends: [(
                "aws".to_owned(),
                [("AWS_REGION".to_owned(), region.to_owned())].into(),
            )]
            .into(),
        };
        let merged = merge(&[layer("eu-west-1"), layer("us-east-1")]);
        assert_eq!(merged["aws"].settings["AWS_REGION"], "eu-west-1");
        assert_eq!(merged["aws"].origin, "config eu-west-1: backends.aws");
    }
}
