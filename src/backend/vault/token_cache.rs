//! Vault tokens cached between runs: one file per identity (address, namespace, auth mount,
//! role or user), mode 0600 in a 0700 directory under `$HOME`, replaced atomically so a
//! concurrent run never reads half a file.

use std::fs;
use std::io::{Read as _, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::PathBuf;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// AVP's file format.
#[derive(Serialize, Deserialize)]
struct CachedToken {
    vault_token: String,
}

/// A cache file is a few hundred bytes; anything larger is not ours.
const MAX_FILE: u64 = 64 << 10;

pub struct TokenCache {
    file: PathBuf,
}

impl TokenCache {
    /// The cache for one identity; `None` without a home directory.
    pub fn for_identity(parts: &[&str]) -> Option<TokenCache> {
        let home = std::env::var_os("HOME").filter(|h| !h.is_empty())?;
        let file = PathBuf::from(home).join(".secretsubst").join(format!(
            "vault-token-{}.json",
            fingerprint(&parts.join("\n"))
        ));
        Some(TokenCache { file })
    }

    /// The cached token, read only from a regular file of sane size in a real directory: a FIFO
    /// must not block the run, nor a link to `/dev/zero` flood it.
    pub fn load(&self) -> Option<String> {
        let dir = self.file.parent()?;
        if !fs::symlink_metadata(dir).ok()?.is_dir() {
            return None;
        }
        let file = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&self.file)
            .ok()?;
        let meta = file.metadata().ok()?;
        if !meta.is_file() || meta.len() > MAX_FILE {
            return None;
        }
        let mut text = String::new();
        file.take(MAX_FILE).read_to_string(&mut text).ok()?;
        let cached: CachedToken = serde_json::from_str(&text).ok()?;
        Some(cached.vault_token).filter(|t| !t.is_empty())
    }

    pub fn store(&self, token: &str) -> anyhow::Result<()> {
        let dir = self.file.parent().context("cache file has no directory")?;
        // Never write through a link someone else may have planted for the directory.
        if fs::symlink_metadata(dir).is_ok_and(|m| !m.is_dir()) {
            anyhow::bail!(
                "{} is not a directory (a link?): not caching there",
                dir.display()
            );
        }
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot restrict {}", dir.display()))?;
        // NamedTempFile is created with mode 0600 and renamed over the old file.
        let mut temp = tempfile::NamedTempFile::new_in(dir)
            .with_context(|| format!("cannot write in {}", dir.display()))?;
        let body = serde_json::to_string_pretty(&CachedToken {
            vault_token: token.to_owned(),
        })?;
        temp.write_all(body.as_bytes())?;
        temp.as_file().sync_all()?;
        temp.persist(&self.file)
            .with_context(|| format!("cannot replace {}", self.file.display()))?;
        Ok(())
    }
}

/// A short, stable, one-way name for a value that may be secret.
pub fn fingerprint(value: &str) -> String {
    Sha256::digest(value.as_bytes())[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache_in(dir: &std::path::Path, parts: &[&str]) -> TokenCache {
        TokenCache {
            file: dir.join(".secretsubst").join(format!(
                "vault-token-{}.json",
                fingerprint(&parts.join("\n"))
            )),
        }
    }

    #[test]
    fn tokens_round_trip_with_private_permissions() {
        let home = tempfile::tempdir().unwrap();
        let cache = cache_in(home.path(), &["https://v", "", "auth/approle", "approle:r"]);
        assert_eq!(cache.load(), None);
        cache.store("hvs.one").unwrap();
        cache.store("hvs.two").unwrap();
        assert_eq!(cache.load().as_deref(), Some("hvs.two"));
        let mode = |p: &std::path::Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&cache.file), 0o600);
        assert_eq!(mode(cache.file.parent().unwrap()), 0o700);
    }

    #[test]
    fn identities_get_their_own_files() {
        let home = tempfile::tempdir().unwrap();
        let a = cache_in(home.path(), &["https://v", "", "auth/kubernetes", "k8s:a"]);
        let b = cache_in(home.path(), &["https://v", "", "auth/kubernetes", "k8s:b"]);
        a.store("hvs.a").unwrap();
        assert_eq!(b.load(), None);
        assert_ne!(a.file, b.file);
    }

    #[test]
    fn fifos_links_and_huge_files_are_not_read() {
        let home = tempfile::tempdir().unwrap();
        let cache = cache_in(home.path(), &["x"]);
        let dir = cache.file.parent().unwrap();
        fs::create_dir_all(dir).unwrap();
        std::os::unix::fs::symlink("/dev/zero", &cache.file).unwrap();
        assert_eq!(cache.load(), None);
        fs::remove_file(&cache.file).unwrap();
        let fifo = std::ffi::CString::new(cache.file.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo reads the NUL-terminated path only.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        assert_eq!(cache.load(), None);
        fs::remove_file(&cache.file).unwrap();
        fs::write(
            &cache.file,
            format!("{{\"vault_token\": \"{}\"}}", "x".repeat(1 << 20)),
        )
        .unwrap();
        assert_eq!(cache.load(), None);
    }

    #[test]
    fn a_linked_cache_directory_is_neither_read_nor_written() {
        let home = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), home.path().join(".secretsubst")).unwrap();
        let cache = cache_in(home.path(), &["x"]);
        assert!(cache.store("hvs.t").is_err());
        assert_eq!(fs::read_dir(elsewhere.path()).unwrap().count(), 0);
        fs::write(
            elsewhere.path().join(cache.file.file_name().unwrap()),
            r#"{"vault_token":"hvs.t"}"#,
        )
        .unwrap();
        assert_eq!(cache.load(), None);
    }
}
