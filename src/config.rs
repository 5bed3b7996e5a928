//! Settings from `ARGOCD_ENV_*`, the environment and a config file, merged with AVP's precedence,
//! then turned into the typed [`Config`] the engine needs.
//!
//! The module never reads the process environment itself (the caller passes it in), so tests are
//! hermetic and the precedence rules are visible in one place. No network: a Kubernetes Secret
//! source is fetched elsewhere and handed to [`Settings::merge`] as one more map.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::fmt;
use std::io;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use regex::Regex;

use crate::deadline::Deadline;
use crate::manifest::tree::join_surrogate_escapes;
use crate::setting_file;

/// AVP's prefix test has no trailing underscore, so `ARGOCD_ENVX` is taken too (as key `ARGOCD_ENVX`).
const ARGOCD_ENV_PREFIX: &str = "ARGOCD_ENV";
/// Stripped from the name to form the key when present.
const ARGOCD_ENV_KEY_PREFIX: &str = "ARGOCD_ENV_";
/// Bounds concurrent backend requests when `AVP_MAX_CONCURRENCY` is unset.
const DEFAULT_MAX_CONCURRENCY: usize = 32;
/// Matches the Vault SDK's default for `VAULT_MAX_RETRIES` (3 attempts).
const DEFAULT_MAX_RETRIES: u32 = 2;
/// More would only queue requests behind one connection pool.
const MAX_CONCURRENCY: usize = 1024;
/// With exponential backoff, more retries would outlast any deadline.
const MAX_RETRIES: u32 = 10;
const MIN_DURATION: Duration = Duration::from_millis(1);
const MAX_DURATION: Duration = Duration::from_secs(7 * 24 * 3600);

/// All settings, keys upper-cased, merged with AVP's precedence.
///
/// Values may be passwords or tokens, so `Debug` lists keys only.
#[derive(Clone, Default)]
pub struct Settings {
    values: BTreeMap<String, String>,
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
    /// 3. `sources` in order (the `-c` config file, later a Kubernetes Secret); empty values count
    ///    as unset, so a later source can still supply the key.
    ///
    /// Unlike AVP, a source never overwrites a real environment variable, `VAULT_*` included.
    /// When names differ only in case (`ARGOCD_ENV_foo` and `ARGOCD_ENV_FOO`), the upper-case
    /// spelling wins, so the result does not depend on the order of `env`.
    pub fn merge(
        env: impl IntoIterator<Item = (String, String)>,
        sources: Vec<BTreeMap<String, String>>,
    ) -> Settings {
        // Byte order puts an upper-case spelling before its lower-case variants; the first one wins.
        let mut env: Vec<(String, String)> = env.into_iter().collect();
        env.sort();
        let mut values = BTreeMap::new();
        for (name, value) in &env {
            if name.starts_with(ARGOCD_ENV_PREFIX) {
                let key = name.strip_prefix(ARGOCD_ENV_KEY_PREFIX).unwrap_or(name);
                if !key.is_empty() {
                    values
                        .entry(key.to_uppercase())
                        .or_insert_with(|| value.clone());
                }
            }
        }
        for (name, value) in env {
            if !value.is_empty() && name.to_uppercase() == name {
                values.entry(name).or_insert(value);
            }
        }
        for source in sources {
            for (key, value) in source {
                if !value.is_empty() {
                    values.entry(key.to_uppercase()).or_insert(value);
                }
            }
        }
        Settings { values }
    }

    /// The value of `key` (case-insensitive, as in viper); `None` when unset or empty.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values
            .get(&key.to_uppercase())
            .map(String::as_str)
            .filter(|value| !value.is_empty())
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

/// The typed settings the engine needs; backends read their own keys from `settings`.
#[derive(Clone, Debug)]
pub struct Config {
    pub settings: Settings,
    /// `AVP_TYPE` trimmed of whitespace and newlines (as AVP); `""` when unset.
    pub backend_type: String,
    /// `AVP_PATH_VALIDATION`, matched unanchored (as AVP's `MatchString`).
    pub path_validation: Option<Regex>,
    /// `AVP_MAX_CONCURRENCY`: bound on concurrent backend requests, at least 1.
    pub max_concurrency: usize,
    /// `AVP_MAX_RETRIES`, else `VAULT_MAX_RETRIES`: retries of a transient failure.
    pub max_retries: u32,
    /// Whether Vault tokens may be cached between runs (off with `--disable-token-cache`).
    pub token_cache: bool,
    /// From `ARGOCD_EXEC_TIMEOUT` (Argo CD's default when unset): when to give up.
    pub deadline: Deadline,
}

impl Config {
    /// Validates and types the settings; fails on an invalid regex or number.
    pub fn from_settings(settings: Settings) -> Result<Config, ConfigError> {
        let backend_type = settings.get("AVP_TYPE").unwrap_or("").trim().to_owned();
        let path_validation = settings
            .get("AVP_PATH_VALIDATION")
            .map(|regex| {
                Regex::new(regex).map_err(|error| ConfigError::InvalidRegex {
                    regex: regex.to_owned(),
                    reason: regex_reason(&error),
                })
            })
            .transpose()?;
        let max_concurrency = parse_number(&settings, "AVP_MAX_CONCURRENCY", 1..=MAX_CONCURRENCY)?
            .unwrap_or(DEFAULT_MAX_CONCURRENCY);
        let max_retries = match parse_number(&settings, "AVP_MAX_RETRIES", 0..=MAX_RETRIES)? {
            Some(retries) => retries,
            None => parse_number(&settings, "VAULT_MAX_RETRIES", 0..=MAX_RETRIES)?
                .unwrap_or(DEFAULT_MAX_RETRIES),
        };
        let deadline = deadline(&settings)?;
        Ok(Config {
            settings,
            backend_type,
            path_validation,
            max_concurrency,
            max_retries,
            token_cache: true,
            deadline,
        })
    }
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
/// password or token), except for the regex and number settings, which are not secret.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The io error is part of the message (not a `source`) so chains do not print it twice.
    #[error("config file {}: {error}", path.display())]
    Read { path: PathBuf, error: io::Error },
    #[error("config file {}: unsupported config type {ext:?}", path.display())]
    UnsupportedType { path: PathBuf, ext: String },
    /// `message` comes from the parser (line/column) or names the line; never the content.
    #[error("config file {}: invalid {format}: {message}", path.display())]
    Parse {
        path: PathBuf,
        format: &'static str,
        message: String,
    },
    #[error("config file {}: expected a map of settings at the top level, found {found}", path.display())]
    NotAMap { path: PathBuf, found: &'static str },
    #[error("config file {}: a setting name must be a non-empty string, found {found}", path.display())]
    InvalidKey { path: PathBuf, found: &'static str },
    #[error("config file {}: setting {key:?} must be a string, number or boolean, found {found}", path.display())]
    NotScalar {
        path: PathBuf,
        key: String,
        found: &'static str,
    },
    #[error("config file {}: settings {first:?} and {second:?} are the same (names are case-insensitive)", path.display())]
    DuplicateKey {
        path: PathBuf,
        first: String,
        second: String,
    },
    /// AVP's wording, so users' searches still match.
    #[error("{regex} is not a valid regular expression: {reason}")]
    InvalidRegex { regex: String, reason: String },
    #[error("{key} must be a duration from 1ms to 168h, such as 90s or 2m, got {value:?}")]
    InvalidDuration { key: &'static str, value: String },
    #[error("{key} must be an integer from {range}, got {value:?}")]
    InvalidNumber {
        key: &'static str,
        range: String,
        value: String,
    },
}

/// The config file formats we read; AVP (viper) also reads TOML, HCL, INI and properties.
enum Format {
    Yaml,
    Json,
    Dotenv,
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

/// Reads a config file given with `-c`. The format comes from the extension, as in viper
/// (`.yaml`/`.yml`, `.json`, `.env`/`.dotenv`, any case); the type is checked before the file is
/// opened, as in viper. Keys are upper-cased; numbers and booleans become their text (`"3"`,
/// `"true"`, where AVP panics on some of them); `null` becomes `""`, which counts as unset.
pub fn read_config_file(path: &Path) -> Result<BTreeMap<String, String>, ConfigError> {
    // `Path::extension` is `None` for `.env`, but viper (`filepath.Ext`) sees type "env" there.
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy())
        .unwrap_or_default();
    let ext = name.rsplit_once('.').map_or("", |(_, ext)| ext);
    let format = match ext.to_ascii_lowercase().as_str() {
        "yaml" | "yml" => Format::Yaml,
        "json" => Format::Json,
        "env" | "dotenv" => Format::Dotenv,
        _ => {
            return Err(ConfigError::UnsupportedType {
                path: path.to_owned(),
                ext: ext.to_owned(),
            });
        }
    };
    let text = setting_file::read_to_string(path, setting_file::MAX_SMALL).map_err(|error| {
        ConfigError::Read {
            path: path.to_owned(),
            error,
        }
    })?;
    let entries = match format {
        Format::Yaml => document_entries(
            path,
            serde_yaml::from_str(&join_surrogate_escapes(&text).0),
            "YAML",
        )?,
        // JSON goes through serde_json (its own errors and rules) into the same value type.
        Format::Json => document_entries(path, serde_json::from_str(&text), "JSON")?,
        Format::Dotenv => parse_dotenv(&text).map_err(|message| ConfigError::Parse {
            path: path.to_owned(),
            format: "dotenv",
            message,
        })?,
    };
    // Upper-case key → (key as written, value); a case-only collision is ambiguous (viper picks at
    // random), so it is an error, while an exact repeat in a dotenv file is a reassignment.
    let mut settings: BTreeMap<String, (String, String)> = BTreeMap::new();
    for (key, value) in entries {
        match settings.entry(key.to_uppercase()) {
            Entry::Vacant(slot) => {
                slot.insert((key, value));
            }
            Entry::Occupied(mut slot) if slot.get().0 == key => {
                slot.get_mut().1 = value;
            }
            Entry::Occupied(slot) => {
                return Err(ConfigError::DuplicateKey {
                    path: path.to_owned(),
                    first: slot.get().0.clone(),
                    second: key,
                });
            }
        }
    }
    Ok(settings
        .into_iter()
        .map(|(key, (_, value))| (key, value))
        .collect())
}

/// Top-level entries of a parsed YAML or JSON document; an empty document has none.
fn document_entries<E: fmt::Display>(
    path: &Path,
    parsed: Result<serde_yaml::Value, E>,
    format: &'static str,
) -> Result<Vec<(String, String)>, ConfigError> {
    use serde_yaml::Value;
    let map = match parsed {
        Ok(Value::Null) => return Ok(Vec::new()),
        Ok(Value::Mapping(map)) => map,
        Ok(other) => {
            return Err(ConfigError::NotAMap {
                path: path.to_owned(),
                found: kind(&other),
            });
        }
        Err(error) => {
            return Err(ConfigError::Parse {
                path: path.to_owned(),
                format,
                message: error.to_string(),
            });
        }
    };
    map.iter()
        .map(|(key, value)| {
            let key = match scalar_text(key) {
                Some(key) if !key.is_empty() => key,
                Some(_) => {
                    return Err(ConfigError::InvalidKey {
                        path: path.to_owned(),
                        found: "an empty name",
                    });
                }
                None => {
                    return Err(ConfigError::InvalidKey {
                        path: path.to_owned(),
                        found: kind(key),
                    });
                }
            };
            let Some(value) = scalar_text(value) else {
                return Err(ConfigError::NotScalar {
                    path: path.to_owned(),
                    key,
                    found: kind(value),
                });
            };
            Ok((key, value))
        })
        .collect()
}

/// Text of a scalar (`""` for null, canonical text for numbers and booleans); `None` for a
/// map or list.
fn scalar_text(value: &serde_yaml::Value) -> Option<String> {
    use serde_yaml::Value;
    match value {
        Value::Null => Some(String::new()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.clone()),
        Value::Sequence(_) | Value::Mapping(_) => None,
        // A custom tag does not change what the setting means to us.
        Value::Tagged(tagged) => scalar_text(&tagged.value),
    }
}

/// What a value is, for error messages that must not show the value itself.
fn kind(value: &serde_yaml::Value) -> &'static str {
    use serde_yaml::Value;
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a map",
        Value::Tagged(tagged) => kind(&tagged.value),
    }
}

/// Parses dotenv text: `KEY=VALUE` lines, blank lines, `#` comments, an optional `export `, values
/// optionally in single (literal) or double (`\n`, `\t`, `\r`, `\"`, `\\` escapes) quotes, and a
/// trailing ` # comment` after a value, as gotenv (viper's dotenv reader) does. No `${VAR}`
/// expansion: that would read the process environment. Errors name the line, never its text.
fn parse_dotenv(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut entries = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line
            .strip_prefix("export")
            .filter(|rest| rest.starts_with(char::is_whitespace))
            .map_or(line, str::trim_start);
        let Some((key, raw)) = line.split_once('=') else {
            return Err(format!("line {number}: expected KEY=VALUE"));
        };
        let key = key.trim_end();
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(format!("line {number}: expected KEY=VALUE"));
        }
        let value =
            dotenv_value(raw).map_err(|problem| format!("line {number}: {problem} for {key}"))?;
        entries.push((key.to_owned(), value));
    }
    Ok(entries)
}

/// The value part of a dotenv line (everything after the first `=`).
fn dotenv_value(raw: &str) -> Result<String, &'static str> {
    let trimmed = raw.trim_start();
    let mut chars = trimmed.char_indices();
    let Some((_, quote @ ('"' | '\''))) = chars.next() else {
        // Unquoted: a `#` after whitespace starts a comment; a `#` inside a word does not.
        let end = raw
            .char_indices()
            .find(|&(i, c)| c == '#' && raw[..i].ends_with(char::is_whitespace))
            .map_or(raw.len(), |(i, _)| i);
        return Ok(raw[..end].trim().to_owned());
    };
    let mut value = String::new();
    while let Some((i, c)) = chars.next() {
        if c == quote {
            let rest = trimmed[i + 1..].trim_start();
            return if rest.is_empty() || rest.starts_with('#') {
                Ok(value)
            } else {
                Err("unexpected text after the closing quote")
            };
        }
        if c == '\\' && quote == '"' {
            match chars.next().map(|(_, escaped)| escaped) {
                Some('n') => value.push('\n'),
                Some('t') => value.push('\t'),
                Some('r') => value.push('\r'),
                Some(escaped @ ('"' | '\\')) => value.push(escaped),
                Some(other) => {
                    value.push('\\');
                    value.push(other);
                }
                None => break,
            }
        } else {
            value.push(c);
        }
    }
    Err("unterminated quoted value")
}

#[cfg(test)]
mod tests {
    use std::fs;

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

    fn settings(items: &[(&str, &str)]) -> Settings {
        Settings::merge(pairs(items), Vec::new())
    }

    /// Writes `content` to `name` in a fresh directory, kept alive by the returned guard.
    fn file(name: &str, content: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        fs::write(&path, content).unwrap();
        (dir, path)
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
            vec![
                map(&[
                    ("AVP_TYPE", "sops"),
                    ("VAULT_ADDR", "https://file"),
                    ("AVP_AUTH_TYPE", "token"),
                ]),
                map(&[("AVP_AUTH_TYPE", "k8s"), ("AVP_K8S_ROLE", "r")]),
            ],
        );
        assert_eq!(s.get("AVP_TYPE"), Some("vault"));
        assert_eq!(s.get("VAULT_ADDR"), Some("https://env"));
        assert_eq!(s.get("AVP_AUTH_TYPE"), Some("token"));
        assert_eq!(s.get("AVP_K8S_ROLE"), Some("r"));
        assert_eq!(s.get("AVP_MOUNT_PATH"), None);
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
            vec![map(&[("AVP_PATH_VALIDATION", "^b")])],
        );
        assert_eq!(s.get("AVP_PATH_VALIDATION"), None);
    }

    #[test]
    fn empty_env_value_is_unset_so_file_value_applies() {
        let s = Settings::merge(
            pairs(&[("VAULT_ADDR", "")]),
            vec![map(&[("VAULT_ADDR", "https://file")])],
        );
        assert_eq!(s.get("VAULT_ADDR"), Some("https://file"));
    }

    #[test]
    fn empty_source_value_lets_a_later_source_supply_the_key() {
        let s = Settings::merge(
            Vec::new(),
            vec![map(&[("AVP_TYPE", "")]), map(&[("AVP_TYPE", "vault")])],
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
        let s = Settings::merge(Vec::new(), vec![map(&[("aws_region", "eu-west-1")])]);
        assert_eq!(s.get("AWS_REGION"), Some("eu-west-1"));
        assert_eq!(s.get("aws_region"), Some("eu-west-1"));
    }

    #[test]
    fn debug_lists_keys_but_never_values() {
        let s = Settings::merge(
            pairs(&[("VAULT_TOKEN", "s.supersecret")]),
            vec![map(&[("avp_password", "hunter2")])],
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
    fn yaml_keys_are_upper_cased() {
        let (_dir, path) = file(
            "config.yaml",
            "# settings\nvault_addr: https://vault:8200\nAvp_Type: vault\n",
        );
        assert_eq!(
            read_config_file(&path).unwrap(),
            map(&[("AVP_TYPE", "vault"), ("VAULT_ADDR", "https://vault:8200")])
        );
    }

    #[test]
    fn yml_extension_in_any_case_is_yaml() {
        let (_dir, path) = file("config.YML", "avp_type: vault\n");
        assert_eq!(
            read_config_file(&path).unwrap(),
            map(&[("AVP_TYPE", "vault")])
        );
    }

    #[test]
    fn empty_yaml_file_has_no_settings() {
        let (_dir, path) = file("config.yaml", "# nothing yet\n");
        assert_eq!(read_config_file(&path).unwrap(), BTreeMap::new());
    }

    #[test]
    fn json_file_is_read() {
        let (_dir, path) = file(
            "config.json",
            r#"{"avp_type": "vault", "VAULT_SKIP_VERIFY": true, "VAULT_MAX_RETRIES": 5}"#,
        );
        assert_eq!(
            read_config_file(&path).unwrap(),
            map(&[
                ("AVP_TYPE", "vault"),
                ("VAULT_MAX_RETRIES", "5"),
                ("VAULT_SKIP_VERIFY", "true"),
            ])
        );
    }

    #[test]
    fn numbers_and_booleans_become_their_text_and_null_is_unset() {
        let (_dir, path) = file(
            "config.yaml",
            "VAULT_MAX_RETRIES: 3\nVAULT_SKIP_VERIFY: true\nRATIO: 1.5\nNEG: -7\nAVP_ROLE_ID: ~\n",
        );
        let values = read_config_file(&path).unwrap();
        assert_eq!(
            values,
            map(&[
                ("AVP_ROLE_ID", ""),
                ("NEG", "-7"),
                ("RATIO", "1.5"),
                ("VAULT_MAX_RETRIES", "3"),
                ("VAULT_SKIP_VERIFY", "true"),
            ])
        );
        let s = Settings::merge(Vec::new(), vec![values]);
        assert_eq!(s.get("AVP_ROLE_ID"), None);
    }

    #[test]
    fn dotenv_file_with_comments_quotes_and_export() {
        let content = concat!(
            "# Vault settings\n",
            "\n",
            "export AVP_TYPE=vault\n",
            "AVP_AUTH_TYPE = approle # inline comment\n",
            "AVP_ROLE_ID='single # not a comment'\n",
            "AVP_SECRET_ID=\"dou\\\"ble\\nline\" # comment\n",
            "VAULT_ADDR=https://vault:8200/#frag\n",
            "VAULT_NAMESPACE=a=b\r\n",
            "EMPTY=\n",
        );
        let (_dir, path) = file(".env", content);
        assert_eq!(
            read_config_file(&path).unwrap(),
            map(&[
                ("AVP_AUTH_TYPE", "approle"),
                ("AVP_ROLE_ID", "single # not a comment"),
                ("AVP_SECRET_ID", "dou\"ble\nline"),
                ("AVP_TYPE", "vault"),
                ("EMPTY", ""),
                ("VAULT_ADDR", "https://vault:8200/#frag"),
                ("VAULT_NAMESPACE", "a=b"),
            ])
        );
    }

    #[test]
    fn dotenv_line_without_equals_is_an_error_that_hides_the_line() {
        let (_dir, path) = file("config.dotenv", "AVP_TYPE=vault\ns.secrettoken\n");
        assert_eq!(
            read_config_file(&path).unwrap_err().to_string(),
            format!(
                "config file {}: invalid dotenv: line 2: expected KEY=VALUE",
                path.display()
            )
        );
    }

    #[test]
    fn dotenv_unterminated_quote_names_line_and_key() {
        let (_dir, path) = file("config.env", "AVP_PASSWORD=\"hunter2\n");
        assert_eq!(
            read_config_file(&path).unwrap_err().to_string(),
            format!(
                "config file {}: invalid dotenv: line 1: unterminated quoted value for AVP_PASSWORD",
                path.display()
            )
        );
    }

    #[test]
    fn nested_map_is_an_error_naming_the_key() {
        let (_dir, path) = file("config.yaml", "vault:\n  addr: https://x\n");
        assert_eq!(
            read_config_file(&path).unwrap_err().to_string(),
            format!(
                "config file {}: setting \"vault\" must be a string, number or boolean, found a map",
                path.display()
            )
        );
    }

    #[test]
    fn list_value_is_an_error_naming_the_key() {
        let (_dir, path) = file("config.json", r#"{"VAULT_HEADERS": ["a"]}"#);
        assert_eq!(
            read_config_file(&path).unwrap_err().to_string(),
            format!(
                "config file {}: setting \"VAULT_HEADERS\" must be a string, number or boolean, found a list",
                path.display()
            )
        );
    }

    #[test]
    fn top_level_list_is_an_error() {
        let (_dir, path) = file("config.yaml", "- a\n- b\n");
        assert_eq!(
            read_config_file(&path).unwrap_err().to_string(),
            format!(
                "config file {}: expected a map of settings at the top level, found a list",
                path.display()
            )
        );
    }

    #[test]
    fn keys_differing_only_in_case_are_an_error() {
        let (_dir, path) = file("config.yaml", "vault_addr: a\nVAULT_ADDR: b\n");
        assert_eq!(
            read_config_file(&path).unwrap_err().to_string(),
            format!(
                "config file {}: settings \"vault_addr\" and \"VAULT_ADDR\" are the same (names are case-insensitive)",
                path.display()
            )
        );
    }

    #[test]
    fn invalid_yaml_error_does_not_echo_content() {
        let (_dir, path) = file("config.yaml", "AVP_PASSWORD: [hunter2\n");
        let error = read_config_file(&path).unwrap_err().to_string();
        assert!(
            error.starts_with(&format!("config file {}: invalid YAML: ", path.display())),
            "{error}"
        );
        assert!(!error.contains("hunter2"), "{error}");
    }

    #[test]
    fn invalid_json_error_names_line_and_column() {
        let (_dir, path) = file("config.json", "{\"AVP_PASSWORD\": hunter2}");
        assert_eq!(
            read_config_file(&path).unwrap_err().to_string(),
            format!(
                "config file {}: invalid JSON: expected value at line 1 column 18",
                path.display()
            )
        );
    }

    #[test]
    fn unsupported_extension_is_an_error_before_the_file_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing.toml");
        assert_eq!(
            read_config_file(&path).unwrap_err().to_string(),
            format!(
                "config file {}: unsupported config type \"toml\"",
                path.display()
            )
        );
        let bare = dir.path().join("config");
        assert_eq!(
            read_config_file(&bare).unwrap_err().to_string(),
            format!(
                "config file {}: unsupported config type \"\"",
                bare.display()
            )
        );
    }

    #[test]
    fn missing_file_is_an_error_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent.yaml");
        assert_eq!(
            read_config_file(&path).unwrap_err().to_string(),
            format!(
                "config file {}: No such file or directory (os error 2)",
                path.display()
            )
        );
    }

    #[test]
    fn defaults_when_nothing_is_set() {
        let config = Config::from_settings(Settings::default()).unwrap();
        assert_eq!(config.backend_type, "");
        assert!(config.path_validation.is_none());
        assert_eq!(config.max_concurrency, 32);
        assert_eq!(config.max_retries, 2);
    }

    #[test]
    fn backend_type_is_trimmed() {
        let config = Config::from_settings(settings(&[("AVP_TYPE", " vault\n")])).unwrap();
        assert_eq!(config.backend_type, "vault");
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
        let config = Config::from_settings(settings(&[("AVP_MAX_CONCURRENCY", " 4 ")])).unwrap();
        assert_eq!(config.max_concurrency, 4);
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
        assert_eq!(Config::from_settings(both).unwrap().max_retries, 0);
        let vault = settings(&[("VAULT_MAX_RETRIES", "5")]);
        assert_eq!(Config::from_settings(vault).unwrap().max_retries, 5);
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
        let err = Config::from_settings(settings(&[("AVP_TYPE", "x")]))
            .unwrap()
            .settings
            .duration("AVP_TYPE");
        assert_eq!(
            err.unwrap_err().to_string(),
            "AVP_TYPE must be a duration from 1ms to 168h, such as 90s or 2m, got \"x\""
        );
    }
}
