//! The settings of a `1passwordconnect` profile: where the Connect server listens, and the
//! token it accepts. No credential reaches `Debug` or a message.

use std::fmt;

use anyhow::bail;
use reqwest::header::HeaderValue;
use url::Url;

use crate::config::Settings;

pub struct OnePasswordSettings {
    /// `OP_CONNECT_HOST`: the Connect API's base URL, without query or fragment.
    pub host: Url,
    /// `OP_CONNECT_TOKEN` as an `Authorization: Bearer` value, marked sensitive.
    pub authorization: HeaderValue,
}

impl fmt::Debug for OnePasswordSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OnePasswordSettings")
            .field("host", &self.host.as_str())
            .field("authorization", &"[redacted]")
            .finish()
    }
}

impl OnePasswordSettings {
    pub fn parse(settings: &Settings) -> anyhow::Result<OnePasswordSettings> {
        // A value read from a file keeps its final line break; it is not part of the setting.
        let get = |key| settings.trimmed(key);
        let Some(host) = get("OP_CONNECT_HOST") else {
            bail!(
                "OP_CONNECT_HOST must be set when AVP_TYPE is 1passwordconnect (the URL of the Connect server, such as http://onepassword-connect:8080)"
            );
        };
        let Some(token) = get("OP_CONNECT_TOKEN") else {
            bail!("OP_CONNECT_TOKEN must be set when AVP_TYPE is 1passwordconnect");
        };
        Ok(OnePasswordSettings {
            host: host_url(host)?,
            authorization: bearer(token)?,
        })
    }
}

/// `OP_CONNECT_HOST` as an http(s) URL. The token is the only credential: a user name or
/// password in the URL is refused, and never quoted.
fn host_url(host: &str) -> anyhow::Result<Url> {
    let mut url = match Url::parse(host) {
        Ok(url) => url,
        Err(e) if host.contains('@') => bail!("OP_CONNECT_HOST is not a URL ({e})"),
        Err(e) => bail!("OP_CONNECT_HOST {host:?} is not a URL ({e})"),
    };
    if !url.username().is_empty() || url.password().is_some() {
        bail!("OP_CONNECT_HOST must not hold a user name or password: the token goes in OP_CONNECT_TOKEN");
    }
    if !matches!(url.scheme(), "http" | "https") {
        bail!("OP_CONNECT_HOST {host:?} must start with http:// or https://");
    }
    url.set_query(None);
    url.set_fragment(None);
    Ok(url)
}

/// The `Authorization` header for `token`, or an error naming the setting, never the token.
fn bearer(token: &str) -> anyhow::Result<HeaderValue> {
    if let Some(c) = token.chars().find(|c| c.is_control()) {
        bail!("OP_CONNECT_TOKEN holds the character {c:?}, which cannot be sent in an HTTP header");
    }
    if !token.is_ascii() {
        bail!("OP_CONNECT_TOKEN holds a non-ASCII character, which cannot be sent in an HTTP header");
    }
    let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| anyhow::anyhow!("OP_CONNECT_TOKEN cannot be sent in an HTTP header"))?;
    value.set_sensitive(true);
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Layer;

    fn parse(pairs: &[(&str, &str)]) -> anyhow::Result<OnePasswordSettings> {
        let env = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned()));
        OnePasswordSettings::parse(&Settings::merge(env, &[] as &[Layer]))
    }

    fn error(pairs: &[(&str, &str)]) -> String {
        parse(pairs).unwrap_err().to_string()
    }

    #[test]
    fn host_and_token_are_read_trimmed_and_the_token_is_redacted() {
        let settings = parse(&[
            ("OP_CONNECT_HOST", "http://connect:8080/?x=1\n"),
            ("OP_CONNECT_TOKEN", "tok-s3cr3t\n"),
        ])
        .unwrap();
        assert_eq!(settings.host.as_str(), "http://connect:8080/");
        assert_eq!(settings.authorization.to_str().unwrap(), "Bearer tok-s3cr3t");
        assert!(settings.authorization.is_sensitive());
        let debug = format!("{settings:?}");
        assert!(!debug.contains("tok-s3cr3t"), "{debug}");
    }

    #[test]
    fn missing_or_unusable_settings_are_named_without_their_secret() {
        assert_eq!(
            error(&[("OP_CONNECT_TOKEN", "t")]),
            "OP_CONNECT_HOST must be set when AVP_TYPE is 1passwordconnect (the URL of the Connect server, such as http://onepassword-connect:8080)"
        );
        assert_eq!(
            error(&[("OP_CONNECT_HOST", "http://connect:8080")]),
            "OP_CONNECT_TOKEN must be set when AVP_TYPE is 1passwordconnect"
        );
        let host = |host| error(&[("OP_CONNECT_HOST", host), ("OP_CONNECT_TOKEN", "t")]);
        assert_eq!(
            host("onepassword-connect:8080"),
            "OP_CONNECT_HOST \"onepassword-connect:8080\" must start with http:// or https://"
        );
        assert_eq!(
            host("http://user:pw-s3cr3t@connect:8080"),
            "OP_CONNECT_HOST must not hold a user name or password: the token goes in OP_CONNECT_TOKEN"
        );
        assert_eq!(
            host("//pw-s3cr3t@x"),
            "OP_CONNECT_HOST is not a URL (relative URL without a base)"
        );
        let token = |token| error(&[("OP_CONNECT_HOST", "http://c"), ("OP_CONNECT_TOKEN", token)]);
        assert_eq!(
            token("ab\ncd-s3cr3t"),
            "OP_CONNECT_TOKEN holds the character '\\n', which cannot be sent in an HTTP header"
        );
        assert_eq!(
            token("tök-s3cr3t"),
            "OP_CONNECT_TOKEN holds a non-ASCII character, which cannot be sent in an HTTP header"
        );
    }
}
