//! Settings from `ARGOCD_ENV_*`, the environment and a config file, merged with AVP's precedence,
//! then turned into the typed [`Config`] the engine needs, with the backend profiles.
//!
//! The module never reads the process environment itself (the caller passes it in), so tests are
//! hermetic and the precedence rules are visible in one place. No network: a Kubernetes Secret
//! source is fetched elsewhere and handed to [`Settings::merge`] as one more map.

mod file;
pub mod profiles;

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::ops::RangeInclusive;
use std::str::FromStr;
use std::time::Duration;

use regex::Regex;

use crate::deadline::Deadline;
pub use file::{parse_backends, read_config_file};
pub use profiles::{Backends, DEFAULT_PROFILE, Layer, Named, Profile, Profiles};

/// AVP's prefix test has no trailing underscore, so `ARGOCD_ENVX` is taken too (as key `ARGOCD_ENVX`).
const ARGOCD_ENV_PREFIX: &str = "ARGOCD_ENV";
/// Stripped from the name to form the key when present.
const ARGOCD_ENV_KEY_PREFIX: &str = "ARGOCD_ENV_";
/// Bounds concurrent backend requests when `AVP_MAX_CONCURRENCY` is unset.
const DEFAULT_MAX_CONCURRENCY: usize = 128;
/// Matches the Vault SDK's default for `VAULT_MAX_RETRIES` (3 attempts).
const DEFAULT_MAX_RETRIES: u32 = 2;
/// More would only queue requests behind one connection pool.
const MAX_CONCURRENCY: usize = 1024;
/// With exponential backoff, more retries would outlast any deadline.
const MAX_RETRIES: u32 = 10;
const MIN_DURATION: Duration = Duration::from_millis(1);
const MAX_DURATION: Duration = Duration::from_secs(7 * 24 * 3600);

/// All settings, keys upper-cased, merged with AVP's precedence, each with its source.
///
/// Values may be passwords or tokens, so `Debug` lists keys only.
#[derive(Clone, Default)]
pub struct Settings {
    values: BTreeMap<String, String>,
    sources: BTreeMap<String, Source>,
}

/// Where a setting's value came from, for `doctor`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// An `ARGOCD_ENV_` variable (Argo CD's per-Application channel), by its full name.
    ArgocdEnv(String),
    /// The plugin's own environment.
    Env,
    /// A settings source, by its [`Layer::origin`].
    Layer(String),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::ArgocdEnv(name) => f.write_str(name),
            Source::Env => f.write_str("env"),
            Source::Layer(origin) => f.write_str(origin),
        }
    }
}

impl Settings {
    /// Merges the layers, highest priority first:
    ///
    /// 1. `ARGOCD_ENV_<KEY>` from `env` (Argo CD's channel for per-Application settings). As with
    ///    viper's `Set` in AVP, an empty value still counts: it hides the same key in the
    ///    environment and the sources, so the setting reads as unset. This lets an Application
    ///    blank a setting, exactly as it can under AVP.
    /// 2. Plain `<KEY>` from `env`; an empty value counts as unset. Only names without lower-case
    ///    letters are taken, because viper looks a key up by its upper-case name only.
    /// 3. `layers` in order (the `-c` config file, later a Kubernetes Secret); empty values count
    ///    as unset, so a later source can still supply the key.
    ///
    /// Unlike AVP, a source never overwrites a real environment variable, `VAULT_*` included.
    /// When names differ only in case (`ARGOCD_ENV_foo` and `ARGOCD_ENV_FOO`), the upper-case
    /// spelling wins, so the result does not depend on the order of `env`.
    pub fn merge(env: impl IntoIterator<Item = (String, String)>, layers: &[Layer]) -> Settings {
        // Byte order puts an upper-case spelling before its lower-case variants; the first one wins.
        let mut env: Vec<(String, String)> = env.into_iter().collect();
        env.sort();
        let mut settings = Settings::default();
        for (name, value) in &env {
            if name.starts_with(ARGOCD_ENV_PREFIX) {
                let key = name.strip_prefix(ARGOCD_ENV_KEY_PREFIX).unwrap_or(name);
                if !key.is_empty() {
                    settings.offer(key, value, || Source::ArgocdEnv(name.clone()));
                }
            }
        }
        for (name, value) in &env {
            if !value.is_empty() && name.to_uppercase() == *name {
                settings.offer(name, value, || Source::Env);
            }
        }
        for layer in layers {
            for (key, value) in &layer.settings {
                if !value.is_empty() {
                    settings.offer(key, value, || Source::Layer(layer.origin.clone()));
                }
            }
        }
        settings
    }

    /// Sets `key` unless a higher layer already did.
    fn offer(&mut self, key: &str, value: &str, source: impl FnOnce() -> Source) {
        let key = key.to_uppercase();
        if !self.values.contains_key(&key) {
            self.sources.insert(key.clone(), source());
            self.values.insert(key, value.to_owned());
        }
    }

    /// Every key that holds a value, with the value and its source.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str, &Source)> {
        self.values
            .iter()
            .filter(|(_, value)| !value.is_empty())
            .map(|(key, value)| (key.as_str(), value.as_str(), &self.sources[key]))
    }

    /// The value of `key` (case-insensitive, as in viper); `None` when unset or empty.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values
            .get(&key.to_uppercase())
            .map(String::as_str)
            .filter(|value| !value.is_empty())
    }

    /// The value of `key` without surrounding whitespace (a credential file's final line
    /// break); `None` when nothing is left.
    pub fn trimmed(&self, key: &str) -> Option<&str> {
        self.get(key).map(str::trim).filter(|v| !v.is_empty())
    }

    /// A duration setting: Go style (`90s`, `1m30s`, `500ms`, `2h`) or a number of seconds.
    pub fn duration(&self, key: &'static str) -> Result<Option<Duration>, ConfigError> {
        self.get(key)
            .map(|value| {
                parse_duration(value).ok_or_else(|| ConfigError::InvalidDuration {
                    key,
                    value: value.to_owned(),
                })
            })
            .transpose()
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("keys", &self.values.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// A setting a backend (or the engine) reads, so that `doctor` can show it, redact it and
/// notice a misspelt one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SettingKey {
    pub name: &'static str,
    /// A password, token or key: `doctor` prints `[redacted]`.
    pub credential: bool,
    /// What applies when it is unset, as `doctor` shows it.
    pub default: Option<&'static str>,
}

impl SettingKey {
    pub const fn plain(name: &'static str) -> SettingKey {
        SettingKey {
            name,
            credential: false,
            default: None,
        }
    }

    pub const fn credential(name: &'static str) -> SettingKey {
        SettingKey {
            name,
            credential: true,
            default: None,
        }
    }

    pub const fn defaults_to(name: &'static str, default: &'static str) -> SettingKey {
        SettingKey {
            name,
            credential: false,
            default: Some(default),
        }
    }
}

/// The settings of the run itself, read from the flat settings only.
pub const RUN_SETTINGS: &[SettingKey] = &[
    SettingKey::plain("AVP_PATH_VALIDATION"),
    SettingKey::defaults_to("ARGOCD_EXEC_TIMEOUT", "90s"),
    SettingKey::plain("AVP_SOPS_MANIFESTS"),
];

/// The settings every profile reads, whatever its backend.
pub const PROFILE_SETTINGS: &[SettingKey] = &[
    SettingKey::plain("AVP_TYPE"),
    SettingKey::defaults_to("AVP_MAX_CONCURRENCY", "128"),
    SettingKey::defaults_to("AVP_MAX_RETRIES", "VAULT_MAX_RETRIES, else 2"),
    SettingKey::plain("VAULT_MAX_RETRIES"),
];

/// The typed settings the engine needs, and the backend profiles; backends read their own keys
/// from their profile's settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// `AVP_PATH_VALIDATION`, matched unanchored (as AVP's `MatchString`).
    pub path_validation: Option<Regex>,
    /// Whether credentials may be cached between runs (off with `--disable-token-cache`).
    pub cache_credentials: bool,
    /// From `ARGOCD_EXEC_TIMEOUT` (Argo CD's default when unset): when to give up.
    pub deadline: Deadline,
    /// `AVP_SOPS_MANIFESTS=decrypt`: SOPS-encrypted documents in the input are decrypted.
    pub sops_manifests: bool,
    /// `generate --mask`: injected values are replaced by markers naming their secret.
    pub mask: bool,
    /// The default backend (the flat settings) and the named ones.
    pub profiles: Profiles,
}

impl Config {
    /// Validates and types the flat settings, with no named profiles.
    pub fn from_settings(settings: Settings) -> Result<Config, ConfigError> {
        Config::new(settings, Named::new())
    }

    /// Validates and types the flat settings and adds the named profiles of `backends`; fails
    /// on an invalid regex or number in the flat settings.
    pub fn new(settings: Settings, named: Named) -> Result<Config, ConfigError> {
        let path_validation = settings
            .get("AVP_PATH_VALIDATION")
            .map(|regex| {
                Regex::new(regex).map_err(|error| ConfigError::InvalidRegex {
                    regex: regex.to_owned(),
                    reason: regex_reason(&error),
                })
            })
            .transpose()?;
        let deadline = deadline(&settings)?;
        let sops_manifests = match settings.get("AVP_SOPS_MANIFESTS").map(str::trim) {
            None => false,
            Some("decrypt") => true,
            Some(other) => {
                return Err(ConfigError::InvalidChoice {
                    key: "AVP_SOPS_MANIFESTS",
                    choices: "decrypt",
                    value: other.to_owned(),
                });
            }
        };
        Ok(Config {
            path_validation,
            cache_credentials: true,
            deadline,
            sops_manifests,
            mask: false,
            profiles: Profiles::new(settings, named)?,
        })
    }
}

/// How hard to try one profile's backend: `AVP_MAX_CONCURRENCY`, and `AVP_MAX_RETRIES` else
/// `VAULT_MAX_RETRIES`.
pub fn limits(settings: &Settings) -> Result<(usize, u32), ConfigError> {
    let max_concurrency = parse_number(settings, "AVP_MAX_CONCURRENCY", 1..=MAX_CONCURRENCY)?
        .unwrap_or(DEFAULT_MAX_CONCURRENCY);
    let max_retries = match parse_number(settings, "AVP_MAX_RETRIES", 0..=MAX_RETRIES)? {
        Some(retries) => retries,
        None => parse_number(settings, "VAULT_MAX_RETRIES", 0..=MAX_RETRIES)?
            .unwrap_or(DEFAULT_MAX_RETRIES),
    };
    Ok((max_concurrency, max_retries))
}

/// The run deadline from `ARGOCD_EXEC_TIMEOUT`, else Argo CD's default, counting from now.
pub fn deadline(settings: &Settings) -> Result<Deadline, ConfigError> {
    Ok(match settings.duration("ARGOCD_EXEC_TIMEOUT")? {
        Some(timeout) => Deadline::from_timeout(timeout, true),
        None => Deadline::from_timeout(crate::deadline::DEFAULT_TIMEOUT, false),
    })
}

/// Parses an integer setting within `range` (surrounding whitespace allowed); `None` when unset.
fn parse_number<T: FromStr + PartialOrd + fmt::Display>(
    settings: &Settings,
    key: &'static str,
    range: RangeInclusive<T>,
) -> Result<Option<T>, ConfigError> {
    let Some(value) = settings.get(key) else {
        return Ok(None);
    };
    match value.trim().parse::<T>() {
        Ok(number) if range.contains(&number) => Ok(Some(number)),
        _ => Err(ConfigError::InvalidNumber {
            key,
            range: format!("{} to {}", range.start(), range.end()),
            value: value.to_owned(),
        }),
    }
}

/// Why the configuration cannot be used. Messages never contain a setting's value (it may be a
/// password or token), except for the regex and number settings, which are not secret. `origin`
/// names the source (`config file /etc/avp.yaml`, `Secret argocd/avp`).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The io error is part of the message (not a `source`) so chains do not print it twice.
    #[error("{origin}: {error}")]
    Read { origin: String, error: io::Error },
    #[error("{origin}: unsupported config type {ext:?}")]
    UnsupportedType { origin: String, ext: String },
    /// `message` comes from the parser (line/column) or names the line; never the content.
    #[error("{origin}: invalid {format}: {message}")]
    Parse {
        origin: String,
        format: &'static str,
        message: String,
    },
    #[error("{origin}: expected a map of settings at the top level, found {found}")]
    NotAMap { origin: String, found: &'static str },
    #[error("{origin}: a setting name must be a non-empty string, found {found}")]
    InvalidKey { origin: String, found: &'static str },
    #[error("{origin}: setting {key:?} must be a string, number or boolean, found {found}")]
    NotScalar {
        origin: String,
        key: String,
        found: &'static str,
    },
    #[error(
        "{origin}: settings {first:?} and {second:?} are the same (names are case-insensitive)"
    )]
    DuplicateKey {
        origin: String,
        first: String,
        second: String,
    },
    #[error("{origin}: {problem}")]
    Profiles { origin: String, problem: String },
    /// AVP's wording, so users' searches still match.
    #[error("{regex} is not a valid regular expression: {reason}")]
    InvalidRegex { regex: String, reason: String },
    #[error("{key} must be a duration from 1ms to 168h, such as 90s or 2m, got {value:?}")]
    InvalidDuration { key: &'static str, value: String },
    #[error("{key} must be {choices} or unset, got {value:?}")]
    InvalidChoice {
        key: &'static str,
        choices: &'static str,
        value: String,
    },
    #[error("{key} must be an integer from {range}, got {value:?}")]
    InvalidNumber {
        key: &'static str,
        range: String,
        value: String,
    },
}

/// A Go duration (`90s`, `1m30s`, `1.5h`, `250ms`, `10us`) or a number of seconds, from 1 ms to
/// a week: a longer timeout would only hide a hang, and a shorter one fails every request.
fn parse_duration(value: &str) -> Option<Duration> {
    let value = value.trim();
    let total = match value.parse::<f64>() {
        Ok(seconds) => Duration::try_from_secs_f64(seconds).ok()?,
        Err(_) => {
            let mut total = Duration::ZERO;
            let mut rest = value;
            while !rest.is_empty() {
                let split = rest.find(|c: char| !c.is_ascii_digit() && c != '.')?;
                let (number, tail) = rest.split_at(split);
                let number: f64 = number.parse().ok()?;
                let unit_len = tail
                    .find(|c: char| c.is_ascii_digit() || c == '.')
                    .unwrap_or(tail.len());
                let (unit, tail) = tail.split_at(unit_len);
                let seconds_per_unit = match unit {
                    "h" => 3600.0,
                    "m" => 60.0,
                    "s" => 1.0,
                    "ms" => 1e-3,
                    "us" | "\u{b5}s" | "\u{3bc}s" => 1e-6,
                    "ns" => 1e-9,
                    _ => return None,
                };
                total = total
                    .checked_add(Duration::try_from_secs_f64(number * seconds_per_unit).ok()?)?;
                rest = tail;
            }
            total
        }
    };
    (MIN_DURATION..=MAX_DURATION)
        .contains(&total)
        .then_some(total)
}

/// The regex crate's syntax errors span several lines (pattern, carets, reason): keep the reason,
/// so the error stays one line.
fn regex_reason(error: &regex::Error) -> String {
    let text = error.to_string();
    let last = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(&text);
    last.trim().trim_start_matches("error: ").to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn map(items: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs(items).into_iter().collect()
    }

    fn layer(items: &[(&str, &str)]) -> Layer {
        Layer::flat("test", map(items))
    }

    fn settings(items: &[(&str, &str)]) -> Settings {
        Settings::merge(pairs(items), &[])
    }

    fn config_error(items: &[(&str, &str)]) -> String {
        Config::from_settings(settings(items))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn argocd_env_beats_env_beats_sources() {
        let s = Settings::merge(
            pairs(&[
                ("ARGOCD_ENV_AVP_TYPE", "vault"),
                ("AVP_TYPE", "not-valid-type"),
                ("VAULT_ADDR", "https://env"),
            ]),
            &[
                layer(&[
                    ("AVP_TYPE", "sops"),
                    ("VAULT_ADDR", "https://file"),
                    ("AVP_AUTH_TYPE", "token"),
                ]),
                layer(&[("AVP_AUTH_TYPE", "k8s"), ("AVP_K8S_ROLE", "r")]),
            ],
        );
        assert_eq!(s.get("AVP_TYPE"), Some("vault"));
        assert_eq!(s.get("VAULT_ADDR"), Some("https://env"));
        assert_eq!(s.get("AVP_AUTH_TYPE"), Some("token"));
        assert_eq!(s.get("AVP_K8S_ROLE"), Some("r"));
        assert_eq!(s.get("AVP_MOUNT_PATH"), None);
    }

    #[test]
    fn each_setting_remembers_the_source_it_came_from() {
        let s = Settings::merge(
            pairs(&[
                ("ARGOCD_ENV_avp_type", "vault"),
                ("VAULT_ADDR", "https://env"),
                ("AVP_AUTH_TYPE", ""),
            ]),
            &[
                Layer::flat("config file a.yaml", map(&[("AVP_AUTH_TYPE", "token")])),
                Layer::flat("Secret argocd/avp", map(&[("VAULT_TOKEN", "t")])),
            ],
        );
        let entries: Vec<(&str, String)> =
            s.entries().map(|(k, _, s)| (k, s.to_string())).collect();
        assert_eq!(
            entries,
            [
                ("AVP_AUTH_TYPE", "config file a.yaml".to_owned()),
                ("AVP_TYPE", "ARGOCD_ENV_avp_type".to_owned()),
                ("VAULT_ADDR", "env".to_owned()),
                ("VAULT_TOKEN", "Secret argocd/avp".to_owned()),
            ]
        );
    }

    #[test]
    fn argocd_env_prefix_without_underscore_keeps_whole_name() {
        let s = settings(&[("ARGOCD_ENVX", "1"), ("ARGOCD_ENV_", "ignored")]);
        assert_eq!(s.get("ARGOCD_ENVX"), Some("1"));
        assert_eq!(s.get("X"), None);
        assert_eq!(
            format!("{s:?}"),
            r#"Settings { keys: ["ARGOCD_ENVX", "ARGOCD_ENV_"] }"#
        );
    }

    #[test]
    fn argocd_env_key_is_case_insensitive_and_upper_case_spelling_wins() {
        let s = settings(&[
            ("ARGOCD_ENV_vault_namespace", "lower"),
            ("ARGOCD_ENV_VAULT_NAMESPACE", "upper"),
            ("ARGOCD_ENV_avp_kv_version", "1"),
        ]);
        assert_eq!(s.get("VAULT_NAMESPACE"), Some("upper"));
        assert_eq!(s.get("AVP_KV_VERSION"), Some("1"));
    }

    #[test]
    fn empty_argocd_env_value_hides_env_and_file() {
        let s = Settings::merge(
            pairs(&[
                ("ARGOCD_ENV_AVP_PATH_VALIDATION", ""),
                ("AVP_PATH_VALIDATION", "^a"),
            ]),
            &[layer(&[("AVP_PATH_VALIDATION", "^b")])],
        );
        assert_eq!(s.get("AVP_PATH_VALIDATION"), None);
    }

    #[test]
    fn empty_env_value_is_unset_so_file_value_applies() {
        let s = Settings::merge(
            pairs(&[("VAULT_ADDR", "")]),
            &[layer(&[("VAULT_ADDR", "https://file")])],
        );
        assert_eq!(s.get("VAULT_ADDR"), Some("https://file"));
    }

    #[test]
    fn empty_source_value_lets_a_later_source_supply_the_key() {
        let s = Settings::merge(
            Vec::new(),
            &[layer(&[("AVP_TYPE", "")]), layer(&[("AVP_TYPE", "vault")])],
        );
        assert_eq!(s.get("AVP_TYPE"), Some("vault"));
    }

    #[test]
    fn env_names_with_lower_case_letters_are_ignored() {
        let s = settings(&[("avp_type", "vault"), ("Vault_Addr", "https://x")]);
        assert_eq!(s.get("AVP_TYPE"), None);
        assert_eq!(s.get("VAULT_ADDR"), None);
    }

    #[test]
    fn get_is_case_insensitive() {
        let s = Settings::merge(Vec::new(), &[layer(&[("aws_region", "eu-west-1")])]);
        assert_eq!(s.get("AWS_REGION"), Some("eu-west-1"));
        assert_eq!(s.get("aws_region"), Some("eu-west-1"));
    }

    #[test]
    fn debug_lists_keys_but_never_values() {
        let s = Settings::merge(
            pairs(&[("VAULT_TOKEN", "s.supersecret")]),
            &[layer(&[("avp_password", "hunter2")])],
        );
        let config = Config::from_settings(s.clone()).unwrap();
        let debug = format!("{s:?} {config:?}");
        assert_eq!(
            format!("{s:?}"),
            r#"Settings { keys: ["AVP_PASSWORD", "VAULT_TOKEN"] }"#
        );
        assert!(!debug.contains("supersecret"), "{debug}");
        assert!(!debug.contains("hunter2"), "{debug}");
    }

    #[test]
    fn defaults_when_nothing_is_set() {
        let config = Config::from_settings(Settings::default()).unwrap();
        assert_eq!(config.profiles.default_profile().backend_type, "");
        assert!(config.path_validation.is_none());
        assert_eq!(limits(&Settings::default()).unwrap(), (128, 2));
    }

    #[test]
    fn backend_type_is_trimmed() {
        let config = Config::from_settings(settings(&[("AVP_TYPE", " vault\n")])).unwrap();
        assert_eq!(config.profiles.default_profile().backend_type, "vault");
    }

    #[test]
    fn path_validation_is_unanchored() {
        let config =
            Config::from_settings(settings(&[("AVP_PATH_VALIDATION", r"secret/data/")])).unwrap();
        let regex = config.path_validation.unwrap();
        assert!(regex.is_match("kv/secret/data/app"));
        assert!(!regex.is_match("kv/other"));
    }

    #[test]
    fn invalid_regex_uses_avp_wording() {
        assert_eq!(
            config_error(&[("AVP_PATH_VALIDATION", r"^\/(?!\/)(.*?)")]),
            r"^\/(?!\/)(.*?) is not a valid regular expression: look-around, including look-ahead and look-behind, is not supported"
        );
    }

    #[test]
    fn max_concurrency_is_read_and_trimmed() {
        let (concurrency, _) = limits(&settings(&[("AVP_MAX_CONCURRENCY", " 4 ")])).unwrap();
        assert_eq!(concurrency, 4);
    }

    #[test]
    fn max_concurrency_must_be_a_positive_integer() {
        assert_eq!(
            config_error(&[("AVP_MAX_CONCURRENCY", "0")]),
            r#"AVP_MAX_CONCURRENCY must be an integer from 1 to 1024, got "0""#
        );
        assert_eq!(
            config_error(&[("AVP_MAX_CONCURRENCY", "many")]),
            r#"AVP_MAX_CONCURRENCY must be an integer from 1 to 1024, got "many""#
        );
    }

    #[test]
    fn avp_max_retries_beats_vault_max_retries() {
        let both = settings(&[("AVP_MAX_RETRIES", "0"), ("VAULT_MAX_RETRIES", "5")]);
        assert_eq!(limits(&both).unwrap().1, 0);
        let vault = settings(&[("VAULT_MAX_RETRIES", "5")]);
        assert_eq!(limits(&vault).unwrap().1, 5);
    }

    #[test]
    fn max_retries_must_be_a_non_negative_integer() {
        assert_eq!(
            config_error(&[("AVP_MAX_RETRIES", "-1")]),
            r#"AVP_MAX_RETRIES must be an integer from 0 to 10, got "-1""#
        );
        assert_eq!(
            config_error(&[("VAULT_MAX_RETRIES", "three")]),
            r#"VAULT_MAX_RETRIES must be an integer from 0 to 10, got "three""#
        );
    }

    #[test]
    fn out_of_range_settings_are_errors_naming_the_setting() {
        for value in [
            "18446744073709551615",
            "18446744073709551615s",
            "1e300",
            "169h",
            "-1s",
            "-5",
            "0",
            "0s",
            "NaN",
            "inf",
            "99999999999999999999h",
        ] {
            for key in ["ARGOCD_EXEC_TIMEOUT", "VAULT_CLIENT_TIMEOUT"] {
                let s = settings(&[(key, value)]);
                let err = match key {
                    "ARGOCD_EXEC_TIMEOUT" => Config::from_settings(s).unwrap_err(),
                    _ => s.duration(key).unwrap_err(),
                };
                assert_eq!(
                    err.to_string(),
                    format!(
                        "{key} must be a duration from 1ms to 168h, such as 90s or 2m, got {value:?}"
                    )
                );
            }
        }
        assert_eq!(
            config_error(&[("AVP_MAX_RETRIES", "4294967296")]),
            r#"AVP_MAX_RETRIES must be an integer from 0 to 10, got "4294967296""#
        );
        assert_eq!(
            config_error(&[("AVP_MAX_CONCURRENCY", "18446744073709551616")]),
            r#"AVP_MAX_CONCURRENCY must be an integer from 1 to 1024, got "18446744073709551616""#
        );
    }

    #[test]
    fn durations_read_go_style_and_plain_seconds() {
        let d = |v: &str| parse_duration(v);
        assert_eq!(d("30"), Some(Duration::from_secs(30)));
        assert_eq!(d("90s"), Some(Duration::from_secs(90)));
        assert_eq!(d("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(d("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(d("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(d("1.5h"), Some(Duration::from_secs(5400)));
        assert_eq!(d("1h0.5m"), Some(Duration::from_secs(3630)));
        assert_eq!(d("1500us"), Some(Duration::from_micros(1500)));
        assert_eq!(d("soon"), None);
        assert_eq!(d(""), None);
        let err = settings(&[("AVP_TYPE", "x")]).duration("AVP_TYPE");
        assert_eq!(
            err.unwrap_err().to_string(),
            "AVP_TYPE must be a duration from 1ms to 168h, such as 90s or 2m, got \"x\""
        );
    }
}
