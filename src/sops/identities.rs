//! The age identities that open a file's data key, found as sops finds them
//! (getsops/sops `age/keysource.go`): `SOPS_AGE_KEY` (one or more `AGE-SECRET-KEY-1…` lines),
//! `SOPS_AGE_KEY_FILE`, else `$XDG_CONFIG_HOME/sops/age/keys.txt` (default
//! `~/.config/sops/age/keys.txt`); and an SSH key from `SOPS_AGE_SSH_PRIVATE_KEY_FILE`.

use std::fmt;
use std::str::FromStr as _;

use anyhow::{Context as _, bail};

use crate::config::Settings;
use crate::setting_file;

/// What to do when no identity was found.
pub const NO_IDENTITY_HINT: &str = "mount the age key into the sidecar and point SOPS_AGE_KEY_FILE at it (or set SOPS_AGE_KEY from a Secret)";

/// The identities of a run; `Debug` names where they came from, never a key.
pub struct Identities {
    keys: Vec<Box<dyn age::Identity + Send + Sync>>,
    sources: String,
}

impl fmt::Debug for Identities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identities")
            .field("count", &self.keys.len())
            .field("sources", &self.sources)
            .finish()
    }
}

impl Identities {
    /// The identities named by `settings` (a profile's, or the flat ones), then by the process
    /// environment, where sops itself looks.
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Identities> {
        Identities::load(&|key| {
            settings
                .get(key)
                .map(str::to_owned)
                .or_else(|| std::env::var(key).ok().filter(|v| !v.is_empty()))
        })
    }

    /// Loads the identities; `get` looks a setting up (the profile's settings, then the
    /// process environment). No identity at all is not an error here: the file's recipients
    /// are named when one fails to open.
    pub fn load(get: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Identities> {
        let mut keys: Vec<Box<dyn age::Identity + Send + Sync>> = Vec::new();
        let mut sources = Vec::new();
        if let Some(text) = get("SOPS_AGE_KEY") {
            keys.extend(parse("SOPS_AGE_KEY", &text)?);
            sources.push("SOPS_AGE_KEY".to_owned());
        }
        if let Some(file) = get("SOPS_AGE_KEY_FILE") {
            let text = setting_file::read_to_string(&file, setting_file::MAX_SMALL)
                .with_context(|| format!("SOPS_AGE_KEY_FILE {file}: cannot read"))?;
            keys.extend(parse(&format!("SOPS_AGE_KEY_FILE {file}"), &text)?);
            sources.push(format!("SOPS_AGE_KEY_FILE {file}"));
        }
        if sources.is_empty() {
            let config = get("XDG_CONFIG_HOME")
                .filter(|d| !d.is_empty())
                .or_else(|| get("HOME").map(|home| format!("{home}/.config")));
            if let Some(file) = config.map(|dir| format!("{dir}/sops/age/keys.txt")) {
                match setting_file::read_to_string(&file, setting_file::MAX_SMALL) {
                    Ok(text) => {
                        keys.extend(parse(&file, &text)?);
                        sources.push(file);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        sources.push(format!("{file} (absent)"));
                    }
                    Err(e) => bail!("{file}: cannot read: {e}"),
                }
            }
        }
        if let Some(file) = get("SOPS_AGE_SSH_PRIVATE_KEY_FILE") {
            let text = setting_file::read(&file, setting_file::MAX_SMALL)
                .with_context(|| format!("SOPS_AGE_SSH_PRIVATE_KEY_FILE {file}: cannot read"))?;
            match age::ssh::Identity::from_buffer(text.as_slice(), Some(file.clone())) {
                Ok(identity @ age::ssh::Identity::Unencrypted(_)) => keys.push(Box::new(identity)),
                Ok(age::ssh::Identity::Encrypted(_)) => bail!(
                    "SOPS_AGE_SSH_PRIVATE_KEY_FILE {file}: the key is protected by a passphrase, which a plugin cannot type"
                ),
                _ => bail!("SOPS_AGE_SSH_PRIVATE_KEY_FILE {file}: not an SSH key age can use"),
            }
            sources.push(format!("SOPS_AGE_SSH_PRIVATE_KEY_FILE {file}"));
        }
        if sources.is_empty() {
            sources.push("nowhere: set SOPS_AGE_KEY_FILE or SOPS_AGE_KEY".to_owned());
        }
        Ok(Identities {
            keys,
            sources: sources.join(", "),
        })
    }

    pub fn iter(&self) -> impl Iterator<Item = &dyn age::Identity> {
        self.keys.iter().map(|k| k.as_ref() as &dyn age::Identity)
    }

    /// Where the identities came from, for errors.
    pub fn sources(&self) -> &str {
        &self.sources
    }

    /// For `doctor`: how many were found and where, or that none was.
    pub fn summary(&self) -> Result<String, String> {
        match self.keys.len() {
            0 => Err(format!(
                "no age identity found (looked in {})",
                self.sources
            )),
            1 => Ok(format!("1 identity from {}", self.sources)),
            n => Ok(format!("{n} identities from {}", self.sources)),
        }
    }
}

/// `AGE-SECRET-KEY-1…` lines; blank lines and `#` comments are skipped. Errors name the line,
/// never its text.
fn parse(source: &str, text: &str) -> anyhow::Result<Vec<Box<dyn age::Identity + Send + Sync>>> {
    let mut keys: Vec<Box<dyn age::Identity + Send + Sync>> = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match age::x25519::Identity::from_str(line) {
            Ok(identity) => keys.push(Box::new(identity)),
            Err(_) => bail!(
                "{source}: line {} is not an age identity (AGE-SECRET-KEY-1…)",
                number + 1
            ),
        }
    }
    Ok(keys)
}
