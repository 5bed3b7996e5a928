//! Values fetched from a backend or produced by modifiers.
//!
//! `Value` holds secret material, so its `Debug` prints `[redacted]` and it has no `Display`:
//! a stray `{:?}` in an error or log line cannot leak a secret.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

/// No value (a secret, or what a modifier makes of it) may be larger: `indent 1000000000` or a
/// chain of `base64encode` must fail, not exhaust memory.
pub const MAX_VALUE_BYTES: usize = 16 << 20;

/// A typed secret value. Maps keep their keys sorted, as Go's JSON encoder prints them.
#[derive(Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    /// Raw bytes: an AWS `SecretBinary`, or `base64decode` output that is not UTF-8.
    Bytes(Vec<u8>),
    List(Vec<Value>),
    Map(BTreeMap<String, Value>),
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Value {
    /// The name used in "invalid datatype" errors.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Bytes(_) => "bytes",
            Value::List(_) => "list",
            Value::Map(_) => "map",
        }
    }

    /// About how many bytes the value holds, for the size limits.
    pub fn size(&self) -> usize {
        match self {
            Value::Null | Value::Bool(_) => 8,
            Value::Number(_) => 24,
            Value::String(s) => s.len(),
            Value::Bytes(b) => b.len(),
            Value::List(items) => items.iter().map(|v| v.size() + 8).sum(),
            Value::Map(map) => map.iter().map(|(k, v)| k.len() + v.size() + 8).sum(),
        }
    }

    /// The text this value becomes inside a string: strings as they are, numbers and booleans
    /// canonically, bytes as standard base64, maps and lists as compact JSON.
    pub fn to_text(&self) -> String {
        match self {
            Value::String(s) => s.clone(),
            Value::Null => "null".to_owned(),
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => format_number(n),
            Value::Bytes(b) => BASE64.encode(b),
            Value::List(_) | Value::Map(_) => self.to_json().to_string(),
        }
    }

    /// The JSON form of this value (bytes become base64 strings).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Number(n) => serde_json::Value::Number(n.clone()),
            Value::String(s) => serde_json::Value::String(s.clone()),
            Value::Bytes(b) => serde_json::Value::String(BASE64.encode(b)),
            Value::List(items) => {
                serde_json::Value::Array(items.iter().map(Value::to_json).collect())
            }
            Value::Map(map) => serde_json::Value::Object(
                map.iter().map(|(k, v)| (k.clone(), v.to_json())).collect(),
            ),
        }
    }
}

impl From<serde_json::Value> for Value {
    fn from(v: serde_json::Value) -> Self {
        match v {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(b),
            serde_json::Value::Number(n) => Value::Number(n),
            serde_json::Value::String(s) => Value::String(s),
            serde_json::Value::Array(items) => {
                Value::List(items.into_iter().map(Value::from).collect())
            }
            serde_json::Value::Object(map) => {
                Value::Map(map.into_iter().map(|(k, v)| (k, Value::from(v))).collect())
            }
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_owned())
    }
}

/// Standard padded base64 with line breaks ignored, as Go's decoder reads it (AVP's rule for
/// Secret values and `base64decode`).
pub fn decode_base64(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    if text.contains(['\r', '\n']) {
        let compact: String = text.chars().filter(|c| *c != '\r' && *c != '\n').collect();
        BASE64.decode(compact)
    } else {
        BASE64.decode(text)
    }
}

/// Prints a number the way Go's `fmt` prints a float64 or an integer: `2`, `2.5`, `1e+21`.
/// An integer keeps all its digits, however many (a Vault value beyond 64 bits stays exact).
pub fn format_number(n: &serde_json::Number) -> String {
    let text = n.to_string();
    let digits = text.strip_prefix('-').unwrap_or(&text);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return text;
    }
    let f = n.as_f64().unwrap_or(f64::NAN);
    format_float(f)
}

fn format_float(f: f64) -> String {
    if f == 0.0 {
        return "0".to_owned();
    }
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..21).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        format!("{f}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(text: &str) -> serde_json::Number {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn numbers_print_like_go() {
        assert_eq!(format_number(&num("5432")), "5432");
        assert_eq!(format_number(&num("-7")), "-7");
        assert_eq!(format_number(&num("2.0")), "2");
        assert_eq!(format_number(&num("2.5")), "2.5");
        assert_eq!(format_number(&num("1e21")), "1e+21");
        assert_eq!(format_number(&num("1e20")), "100000000000000000000");
        assert_eq!(format_number(&num("0.0001")), "0.0001");
        assert_eq!(format_number(&num("0.00001")), "1e-05");
        assert_eq!(
            format_number(&num("12345678901234567890123")),
            "12345678901234567890123"
        );
        assert_eq!(
            format_number(&num("-98765432109876543210")),
            "-98765432109876543210"
        );
    }

    #[test]
    fn debug_never_shows_the_value() {
        let v = Value::String("hunter2".into());
        assert_eq!(format!("{v:?}"), "[redacted]");
        assert_eq!(format!("{:?}", Value::List(vec![v])), "[redacted]");
    }

    #[test]
    fn text_form_of_each_type() {
        assert_eq!(Value::Bool(true).to_text(), "true");
        assert_eq!(Value::Bytes(b"hi".to_vec()).to_text(), "aGk=");
        let map: Value = serde_json::json!({"b": 1, "a": [true, "x"]}).into();
        assert_eq!(map.to_text(), r#"{"a":[true,"x"],"b":1}"#);
    }
}
