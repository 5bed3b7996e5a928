//! Modifiers: the `| name params` stages after a placeholder (avp-compat.md §6).
//!
//! Errors never quote the value being modified: it is a secret.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha2::{Digest, Sha256};

use super::jsonpath;
use crate::manifest::tree::Tree;
use crate::value::{self, MAX_VALUE_BYTES, Value};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Modifier {
    Base64Encode,
    Base64Decode,
    JsonPath(String),
    JsonParse,
    YamlParse,
    Indent(usize),
    Sha256Sum,
}

impl Modifier {
    /// Parses one stage. Parameters are split on runs of whitespace, as Go's `strings.Fields`.
    pub fn parse(stage: &str) -> Result<Modifier, String> {
        let mut fields = stage.split_whitespace();
        let Some(name) = fields.next() else {
            return Err(
                "invalid modifier: (an empty stage between `|` and the next `|` or `>`)".to_owned(),
            );
        };
        let params: Vec<&str> = fields.collect();
        let no_params = |m: Modifier| {
            if params.is_empty() {
                Ok(m)
            } else {
                Err(format!("{name}: invalid parameters (takes none)"))
            }
        };
        match name {
            "base64encode" => no_params(Modifier::Base64Encode),
            "base64decode" => no_params(Modifier::Base64Decode),
            "jsonParse" => no_params(Modifier::JsonParse),
            "yamlParse" => no_params(Modifier::YamlParse),
            "sha256sum" => no_params(Modifier::Sha256Sum),
            "jsonPath" if params.is_empty() => {
                Err("jsonPath: invalid parameters (needs a template)".to_owned())
            }
            "jsonPath" => Ok(Modifier::JsonPath(params.join(" "))),
            "indent" => match params.as_slice() {
                [level] => level
                    .parse::<i64>()
                    .map(|n| Modifier::Indent(usize::try_from(n).unwrap_or(0)))
                    .map_err(|_| format!("indent: invalid indentation level {level:?}")),
                _ => Err("indent: invalid parameters (takes exactly one number)".to_owned()),
            },
            _ => Err(format!("invalid modifier: {name}")),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Modifier::Base64Encode => "base64encode",
            Modifier::Base64Decode => "base64decode",
            Modifier::JsonPath(_) => "jsonPath",
            Modifier::JsonParse => "jsonParse",
            Modifier::YamlParse => "yamlParse",
            Modifier::Indent(_) => "indent",
            Modifier::Sha256Sum => "sha256sum",
        }
    }

    /// Applies the modifier. The error names the modifier and the reason, never the value.
    pub fn apply(&self, value: Value) -> Result<Value, String> {
        let name = self.name();
        let result = match (self, value) {
            (Modifier::Base64Encode, Value::String(s)) => Ok(Value::String(BASE64.encode(s))),
            (Modifier::Base64Encode, Value::Bytes(b)) => Ok(Value::String(BASE64.encode(b))),
            (Modifier::Base64Decode, Value::String(s)) => base64_decode(&s),
            (Modifier::JsonPath(template), value) => json_path(template, value),
            (Modifier::JsonParse, Value::String(s)) => {
                serde_json::from_str::<serde_json::Value>(&s)
                    .map(Value::from)
                    .map_err(|e| format!("invalid JSON at line {} column {}", e.line(), e.column()))
            }
            (Modifier::YamlParse, Value::String(s)) => yaml_parse(&s),
            (Modifier::Indent(n), Value::String(s)) => indent(&s, *n).map(Value::String),
            (Modifier::Sha256Sum, Value::String(s)) => {
                Ok(Value::String(hex(&Sha256::digest(s.as_bytes()))))
            }
            (_, other) => Err(format!(
                "invalid datatype {}, expected string",
                other.type_name()
            )),
        };
        let value = result.map_err(|reason| format!("{name}: {reason}"))?;
        match value.size() {
            size if size > MAX_VALUE_BYTES => Err(format!(
                "{name}: the result would be larger than {} MiB",
                MAX_VALUE_BYTES >> 20
            )),
            _ => Ok(value),
        }
    }
}

/// Strict standard base64 (padding required); line breaks are ignored, as Go's decoder does.
fn base64_decode(s: &str) -> Result<Value, String> {
    let bytes =
        value::decode_base64(s).map_err(|e| format!("invalid base64: {}", base64_reason(&e)))?;
    Ok(match String::from_utf8(bytes) {
        Ok(text) => Value::String(text),
        Err(e) => Value::Bytes(e.into_bytes()),
    })
}

/// The base64 crate's messages name the offending byte; keep only the position.
fn base64_reason(e: &base64::DecodeError) -> String {
    match e {
        base64::DecodeError::InvalidByte(offset, _) => {
            format!("invalid character at offset {offset}")
        }
        base64::DecodeError::InvalidLength(len) => format!("invalid length {len}"),
        base64::DecodeError::InvalidLastSymbol(offset, _) => {
            format!("invalid last character at offset {offset}")
        }
        base64::DecodeError::InvalidPadding => "invalid padding".to_owned(),
    }
}

fn json_path(template: &str, value: Value) -> Result<Value, String> {
    let data = match value {
        Value::String(s) => serde_json::from_str::<serde_json::Value>(&s)
            .map(Value::from)
            .map_err(|e| {
                format!(
                    "input is not JSON (line {} column {})",
                    e.line(),
                    e.column()
                )
            })?,
        Value::Bytes(_) => {
            return Err("invalid datatype bytes, expected JSON text or structured data".to_owned());
        }
        other => other,
    };
    jsonpath::render(template, &data)
        .map(Value::String)
        .map_err(|e| e.to_string())
}

/// Parses with YAML 1.1 rules, as AVP's yaml.v2 does (`enabled: yes` is true).
fn yaml_parse(s: &str) -> Result<Value, String> {
    let tree = Tree::parse(s)
        .map_err(|e| format!("invalid YAML at line {} column {}", e.line, e.column))?;
    tree.map_or(Ok(Value::Null), |tree| tree.to_value())
}

/// AVP's indent: the first line is trimmed; each later non-empty line is trimmed and indented
/// by `n` spaces; empty lines are dropped. The size is checked before anything is allocated.
fn indent(s: &str, n: usize) -> Result<String, String> {
    let lines: Vec<&str> = s.split('\n').collect();
    let size = n
        .checked_mul(lines.len() - 1)
        .and_then(|pad| pad.checked_add(s.len()))
        .filter(|size| *size <= MAX_VALUE_BYTES)
        .ok_or_else(|| {
            format!(
                "the result would be larger than {} MiB",
                MAX_VALUE_BYTES >> 20
            )
        })?;
    let last = lines.len() - 1;
    // A single line gets no padding, whatever `n` is.
    let pad = " ".repeat(if last == 0 { 0 } else { n });
    let mut out = String::with_capacity(size);
    for (i, line) in lines.iter().enumerate() {
        if i > 0 {
            if line.is_empty() {
                continue;
            }
            out.push_str(&pad);
        }
        out.push_str(line.trim());
        if i != last {
            out.push('\n');
        }
    }
    Ok(out)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(stage: &str, value: Value) -> Result<Value, String> {
        Modifier::parse(stage).unwrap().apply(value)
    }

    fn text(stage: &str, input: &str) -> String {
        match apply(stage, input.into()).unwrap() {
            Value::String(s) => s,
            other => panic!("not a string: {}", other.type_name()),
        }
    }

    #[test]
    fn parses_each_modifier_and_its_parameters() {
        assert_eq!(
            Modifier::parse(" base64encode ").unwrap(),
            Modifier::Base64Encode
        );
        assert_eq!(
            Modifier::parse(" jsonPath  {.a}   {.b} ").unwrap(),
            Modifier::JsonPath("{.a} {.b}".into())
        );
        assert_eq!(Modifier::parse("indent 4").unwrap(), Modifier::Indent(4));
        assert_eq!(Modifier::parse("indent -3").unwrap(), Modifier::Indent(0));
    }

    #[test]
    fn parameter_errors_name_the_modifier() {
        assert_eq!(
            Modifier::parse("sha256sum x").unwrap_err(),
            "sha256sum: invalid parameters (takes none)"
        );
        assert_eq!(
            Modifier::parse("indent").unwrap_err(),
            "indent: invalid parameters (takes exactly one number)"
        );
        assert_eq!(
            Modifier::parse("indent two").unwrap_err(),
            "indent: invalid indentation level \"two\""
        );
        assert_eq!(
            Modifier::parse("jsonPath").unwrap_err(),
            "jsonPath: invalid parameters (needs a template)"
        );
        assert_eq!(
            Modifier::parse("Base64encode").unwrap_err(),
            "invalid modifier: Base64encode"
        );
    }

    #[test]
    fn base64_round_trip() {
        assert_eq!(text("base64encode", "default"), "ZGVmYXVsdA==");
        assert_eq!(text("base64decode", "ZGVm\nYXVsdA=="), "default");
    }

    #[test]
    fn base64decode_rejects_invalid_input_without_echoing_it() {
        let err = apply("base64decode", "bXlzZWNyZXQ".into()).unwrap_err();
        assert_eq!(err, "base64decode: invalid base64: invalid padding");
        let err = apply("base64decode", "!!!!".into()).unwrap_err();
        assert_eq!(
            err,
            "base64decode: invalid base64: invalid character at offset 0"
        );
    }

    #[test]
    fn base64decode_of_binary_gives_bytes_that_base64encode_restores() {
        let bytes = apply("base64decode", "/wA=".into()).unwrap();
        assert!(bytes == Value::Bytes(vec![0xff, 0]));
        assert!(apply("base64encode", bytes).unwrap() == Value::from("/wA="));
    }

    #[test]
    fn json_parse_gives_structured_values() {
        let v = apply("jsonParse", r#"{"a": [1, true]}"#.into()).unwrap();
        assert_eq!(v.to_text(), r#"{"a":[1,true]}"#);
        assert_eq!(
            apply("jsonParse", "s3cr3t".into()).unwrap_err(),
            "jsonParse: invalid JSON at line 1 column 1"
        );
    }

    #[test]
    fn yaml_parse_gives_structured_values_and_hides_the_input_on_error() {
        let v = apply("yamlParse", "---\na: 1\nb: [x]\nc: yes\n".into()).unwrap();
        assert_eq!(v.to_text(), r#"{"a":1,"b":["x"],"c":true}"#);
        let err = apply("yamlParse", "s3cr3t: [unclosed".into()).unwrap_err();
        assert!(
            err.starts_with("yamlParse: invalid YAML at line 2"),
            "{err}"
        );
        assert!(!err.contains("s3cr3t"));
    }

    #[test]
    fn json_path_reads_json_text_or_structured_values() {
        assert_eq!(
            text(
                "jsonPath {.deployment.replicas}",
                r#"{"deployment":{"replicas":2}}"#
            ),
            "2"
        );
        let err = apply("jsonPath {.a}", "s3cr3t".into()).unwrap_err();
        assert_eq!(err, "jsonPath: input is not JSON (line 1 column 1)");
    }

    #[test]
    fn indent_follows_avp() {
        assert_eq!(text("indent 2", "a\nb\n"), "a\n  b\n");
        assert_eq!(text("indent 2", "  a\n    b\n\nc"), "a\n  b\n  c");
        assert_eq!(text("indent 3", "a\n \nb"), "a\n   \n   b");
    }

    #[test]
    fn sha256sum_is_lowercase_hex() {
        assert_eq!(
            text("sha256sum", "abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn wrong_datatypes_are_errors_not_panics() {
        let map: Value = serde_json::json!({"a": 1}).into();
        assert_eq!(
            apply("sha256sum", map.clone()).unwrap_err(),
            "sha256sum: invalid datatype map, expected string"
        );
        assert_eq!(
            apply("base64encode", map).unwrap_err(),
            "base64encode: invalid datatype map, expected string"
        );
        let n: Value = serde_json::json!(5).into();
        assert_eq!(
            apply("sha256sum", n).unwrap_err(),
            "sha256sum: invalid datatype number, expected string"
        );
    }

    #[test]
    fn every_modifier_output_is_bounded() {
        let huge = |stage: &str, value: Value| apply(stage, value).unwrap_err();
        assert_eq!(
            huge("indent 9223372036854775807", "a\nb".into()),
            "indent: the result would be larger than 16 MiB"
        );
        assert_eq!(text("indent 100", "a"), "a");
        let big = Value::String("x".repeat(13 << 20));
        assert_eq!(
            huge("base64encode", big),
            "base64encode: the result would be larger than 16 MiB"
        );
    }
}
