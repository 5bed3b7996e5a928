//! The `-c` settings file (YAML, JSON or dotenv) and the `backends` map of profiles, which a
//! settings file or the `-s` Secret may carry.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::path::Path;

use super::ConfigError;
use super::profiles::{self, Layer};
use crate::manifest::tree::join_surrogate_escapes;
use crate::setting_file;

/// The config file formats we read; AVP (viper) also reads TOML, HCL, INI and properties.
enum Format {
    Yaml,
    Json,
    Dotenv,
}

/// Reads a config file given with `-c`. The format comes from the extension, as in viper
/// (`.yaml`/`.yml`, `.json`, `.env`/`.dotenv`, any case); the type is checked before the file is
/// opened, as in viper. Keys are upper-cased; numbers and booleans become their text (`"3"`,
/// `"true"`, where AVP panics on some of them); `null` becomes `""`, which counts as unset. A
/// YAML or JSON file may hold a `backends` map of profiles.
pub fn read_config_file(path: &Path) -> Result<Layer, ConfigError> {
    let origin = format!("config file {}", path.display());
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
                origin,
                ext: ext.to_owned(),
            });
        }
    };
    let text = setting_file::read_to_string(path, setting_file::MAX_SMALL).map_err(|error| {
        ConfigError::Read {
            origin: origin.clone(),
            error,
        }
    })?;
    let parsed = match format {
        Format::Yaml => parse_yaml(&origin, &text)?,
        // JSON goes through serde_json (its own errors and rules) into the same value type.
        Format::Json => serde_json::from_str(&text).map_err(|error| ConfigError::Parse {
            origin: origin.clone(),
            format: "JSON",
            message: error.to_string(),
        })?,
        Format::Dotenv => {
            let entries = parse_dotenv(&text).map_err(|message| ConfigError::Parse {
                origin: origin.clone(),
                format: "dotenv",
                message,
            })?;
            let settings = upper_cased(&origin, entries)?;
            return Ok(Layer::flat(origin, settings));
        }
    };
    let map = match parsed {
        serde_yaml::Value::Null => return Ok(Layer::flat(origin, BTreeMap::new())),
        serde_yaml::Value::Mapping(map) => map,
        other => {
            return Err(ConfigError::NotAMap {
                origin,
                found: kind(&other),
            });
        }
    };
    let mut backends = BTreeMap::new();
    let mut entries = Vec::new();
    for (key, value) in &map {
        let key = key_text(&origin, key)?;
        // An empty `backends:` (every profile commented out) defines none.
        if key.eq_ignore_ascii_case(profiles::BACKENDS_KEY) {
            if !untagged(value).is_null() {
                backends = profile_map(&origin, value)?;
            }
        } else {
            entries.push((key.clone(), setting_text(&origin, &key, value)?));
        }
    }
    Ok(Layer {
        settings: upper_cased(&origin, entries)?,
        origin,
        backends,
    })
}

/// The profiles of a `backends` map written as YAML text (the `-s` Secret's `backends` key).
pub fn parse_backends(origin: &str, text: &str) -> Result<profiles::Backends, ConfigError> {
    let origin = format!("{origin}: key {}", profiles::BACKENDS_KEY);
    match parse_yaml(&origin, text)? {
        serde_yaml::Value::Null => Ok(BTreeMap::new()),
        value => profile_map(&origin, &value),
    }
}

fn parse_yaml(origin: &str, text: &str) -> Result<serde_yaml::Value, ConfigError> {
    serde_yaml::from_str(&join_surrogate_escapes(text).0).map_err(|error| ConfigError::Parse {
        origin: origin.to_owned(),
        format: "YAML",
        message: error.to_string(),
    })
}

/// `backends`: profile names to maps of settings. Names are checked here, so that a typo in an
/// unused profile's name is still an error.
fn profile_map(origin: &str, value: &serde_yaml::Value) -> Result<profiles::Backends, ConfigError> {
    let invalid = |problem: String| ConfigError::Profiles {
        origin: origin.to_owned(),
        problem,
    };
    let serde_yaml::Value::Mapping(map) = untagged(value) else {
        return Err(invalid(format!(
            "{} must map profile names to their settings, found {}",
            profiles::BACKENDS_KEY,
            kind(value)
        )));
    };
    let mut out = BTreeMap::new();
    for (name, settings) in map {
        let Some(name) = scalar_text(name) else {
            return Err(invalid(format!(
                "a profile name must be a string, found {}",
                kind(name)
            )));
        };
        profiles::check_name(&name).map_err(invalid)?;
        let field = format!("{}.{name}", profiles::BACKENDS_KEY);
        let serde_yaml::Value::Mapping(settings) = untagged(settings) else {
            return Err(invalid(format!(
                "{field} must be a map of settings, found {}",
                kind(settings)
            )));
        };
        let place = format!("{origin}: {field}");
        let mut entries = Vec::new();
        for (key, value) in settings {
            let key = key_text(&place, key)?;
            entries.push((key.clone(), setting_text(&place, &key, value)?));
        }
        let settings = upper_cased(&place, entries)?;
        if settings.get("AVP_TYPE").is_none_or(|t| t.trim().is_empty()) {
            return Err(invalid(format!("{field}: AVP_TYPE is required")));
        }
        if out.insert(name.clone(), settings).is_some() {
            return Err(invalid(format!("the profile {name:?} is defined twice")));
        }
    }
    Ok(out)
}

fn untagged(value: &serde_yaml::Value) -> &serde_yaml::Value {
    match value {
        serde_yaml::Value::Tagged(tagged) => untagged(&tagged.value),
        other => other,
    }
}

fn key_text(origin: &str, key: &serde_yaml::Value) -> Result<String, ConfigError> {
    match scalar_text(key) {
        Some(key) if !key.is_empty() => Ok(key),
        Some(_) => Err(ConfigError::InvalidKey {
            origin: origin.to_owned(),
            found: "an empty name",
        }),
        None => Err(ConfigError::InvalidKey {
            origin: origin.to_owned(),
            found: kind(key),
        }),
    }
}

fn setting_text(origin: &str, key: &str, value: &serde_yaml::Value) -> Result<String, ConfigError> {
    scalar_text(value).ok_or_else(|| ConfigError::NotScalar {
        origin: origin.to_owned(),
        key: key.to_owned(),
        found: kind(value),
    })
}

/// Upper-case key → value. A case-only collision is ambiguous (viper picks at random), so it is
/// an error, while an exact repeat in a dotenv file is a reassignment.
fn upper_cased(
    origin: &str,
    entries: Vec<(String, String)>,
) -> Result<BTreeMap<String, String>, ConfigError> {
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
                    origin: origin.to_owned(),
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
    use std::path::PathBuf;

    use super::*;
    use crate::config::Settings;

    /// Writes `content` to `name` in a fresh directory, kept alive by the returned guard.
    fn file(name: &str, content: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        fs::write(&path, content).unwrap();
        (dir, path)
    }

    fn map(items: &[(&str, &str)]) -> BTreeMap<String, String> {
        items
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn flat(path: &Path) -> Result<BTreeMap<String, String>, ConfigError> {
        read_config_file(path).map(|layer| layer.settings)
    }

    #[test]
    fn yaml_keys_are_upper_cased() {
        let (_dir, path) = file(
            "config.yaml",
            "# settings\nvault_addr: https://vault:8200\nAvp_Type: vault\n",
        );
        assert_eq!(
            flat(&path).unwrap(),
            map(&[("AVP_TYPE", "vault"), ("VAULT_ADDR", "https://vault:8200")])
        );
    }

    #[test]
    fn yml_extension_in_any_case_is_yaml() {
        let (_dir, path) = file("config.YML", "avp_type: vault\n");
        assert_eq!(flat(&path).unwrap(), map(&[("AVP_TYPE", "vault")]));
    }

    #[test]
    fn empty_yaml_file_has_no_settings() {
        let (_dir, path) = file("config.yaml", "# nothing yet\n");
        assert_eq!(flat(&path).unwrap(), BTreeMap::new());
    }

    #[test]
    fn json_file_is_read() {
        let (_dir, path) = file(
            "config.json",
            r#"{"avp_type": "vault", "VAULT_SKIP_VERIFY": true, "VAULT_MAX_RETRIES": 5}"#,
        );
        assert_eq!(
            flat(&path).unwrap(),
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
        let values = flat(&path).unwrap();
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
        let s = Settings::merge(Vec::new(), &[Layer::flat("test", values)]);
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
            flat(&path).unwrap(),
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
            flat(&path).unwrap_err().to_string(),
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
            flat(&path).unwrap_err().to_string(),
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
            flat(&path).unwrap_err().to_string(),
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
            flat(&path).unwrap_err().to_string(),
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
            flat(&path).unwrap_err().to_string(),
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
            flat(&path).unwrap_err().to_string(),
            format!(
                "config file {}: settings \"vault_addr\" and \"VAULT_ADDR\" are the same (names are case-insensitive)",
                path.display()
            )
        );
    }

    #[test]
    fn invalid_yaml_error_does_not_echo_content() {
        let (_dir, path) = file("config.yaml", "AVP_PASSWORD: [hunter2\n");
        let error = flat(&path).unwrap_err().to_string();
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
            flat(&path).unwrap_err().to_string(),
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
            flat(&path).unwrap_err().to_string(),
            format!(
                "config file {}: unsupported config type \"toml\"",
                path.display()
            )
        );
        let bare = dir.path().join("config");
        assert_eq!(
            flat(&bare).unwrap_err().to_string(),
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
            flat(&path).unwrap_err().to_string(),
            format!(
                "config file {}: No such file or directory (os error 2)",
                path.display()
            )
        );
    }

    #[test]
    fn a_backends_map_holds_profiles_with_upper_cased_keys() {
        let (_dir, path) = file(
            "config.yaml",
            "avp_type: vault\nbackends:\n  aws-prod:\n    avp_type: awssecretsmanager\n    AVP_MAX_RETRIES: 3\n",
        );
        let layer = read_config_file(&path).unwrap();
        assert_eq!(layer.settings, map(&[("AVP_TYPE", "vault")]));
        assert_eq!(
            layer.backends["aws-prod"],
            map(&[("AVP_TYPE", "awssecretsmanager"), ("AVP_MAX_RETRIES", "3")])
        );
        let (_dir, path) = file(
            "config.json",
            r#"{"BACKENDS": {"team": {"AVP_TYPE": "file"}}}"#,
        );
        let layer = read_config_file(&path).unwrap();
        assert_eq!(layer.backends["team"], map(&[("AVP_TYPE", "file")]));
        let (_dir, path) = file("config.yaml", "AVP_TYPE: file\nbackends:\n  # none yet\n");
        assert!(read_config_file(&path).unwrap().backends.is_empty());
    }

    #[test]
    fn a_secrets_backends_text_is_parsed_with_errors_naming_the_secret() {
        let backends = parse_backends("Secret argocd/avp", "team:\n  AVP_TYPE: file\n").unwrap();
        assert_eq!(backends["team"], map(&[("AVP_TYPE", "file")]));
        assert_eq!(
            parse_backends("Secret argocd/avp", "team:\n  AWS_REGION: x\n")
                .unwrap_err()
                .to_string(),
            "Secret argocd/avp: key backends: backends.team: AVP_TYPE is required"
        );
        let err = parse_backends("Secret argocd/avp", "team: [s3cr3t\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("Secret argocd/avp: key backends: invalid YAML: "),
            "{err}"
        );
        assert!(!err.contains("s3cr3t"), "{err}");
    }
}
