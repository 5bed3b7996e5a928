//! One SOPS value: `ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]`, AES-256-GCM with the 32-byte
//! nonce sops uses and the value's path as additional data (getsops/sops `aes/cipher.go`).

use std::sync::LazyLock;

use aes_gcm::AesGcm;
use aes_gcm::aead::generic_array::GenericArray;
use aes_gcm::aead::generic_array::typenum::U32;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::aes::Aes256;
use regex::Regex;

use crate::value::decode_base64;

static ENCRYPTED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^ENC\[AES256_GCM,data:(.+),iv:(.+),tag:(.+),type:(.+)\]").expect("valid regex")
});

/// A decrypted value and the type sops recorded for it; `Debug` never shows the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Plain {
    pub text: Vec<u8>,
    pub kind: PlainKind,
}

impl std::fmt::Debug for Plain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Plain({:?}, [redacted])", self.kind)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlainKind {
    Str,
    Int,
    Float,
    Bool,
    Bytes,
    Time,
    Comment,
}

/// Decrypts `text` with the data key, checking that it was encrypted for `additional_data` (the
/// value's path, `a:b:`). An empty value is the empty string, as sops leaves it unencrypted.
/// Errors never quote the value.
pub fn decrypt(text: &str, key: &[u8; 32], additional_data: &str) -> Result<Plain, String> {
    if text.is_empty() {
        return Ok(Plain {
            text: Vec::new(),
            kind: PlainKind::Str,
        });
    }
    let caps = ENCRYPTED
        .captures(text)
        .ok_or("the value is not in sops's ENC[AES256_GCM,…] format")?;
    let part = |i: usize, name: &str| {
        decode_base64(&caps[i]).map_err(|_| format!("the value's {name} is not base64"))
    };
    let (data, iv, tag) = (part(1, "data")?, part(2, "iv")?, part(3, "tag")?);
    let kind = match &caps[4] {
        "str" => PlainKind::Str,
        "int" => PlainKind::Int,
        "float" => PlainKind::Float,
        "bool" => PlainKind::Bool,
        "bytes" => PlainKind::Bytes,
        "time" => PlainKind::Time,
        "comment" => PlainKind::Comment,
        other => {
            return Err(format!(
                "unknown value type {:?}",
                crate::error::excerpt(other)
            ));
        }
    };
    if iv.len() != 32 || tag.len() != 16 {
        return Err("the value's iv or tag has the wrong length".to_owned());
    }
    let cipher = AesGcm::<Aes256, U32>::new(GenericArray::from_slice(key));
    let mut sealed = data;
    sealed.extend_from_slice(&tag);
    let text = cipher
        .decrypt(
            GenericArray::from_slice(&iv),
            Payload {
                msg: &sealed,
                aad: additional_data.as_bytes(),
            },
        )
        .map_err(|_| "the value does not decrypt with the file's data key (changed after encryption, or moved to another key)".to_owned())?;
    Ok(Plain { text, kind })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seal(plain: &str, key: &[u8; 32], aad: &str, kind: &str) -> String {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD;
        let cipher = AesGcm::<Aes256, U32>::new(GenericArray::from_slice(key));
        let iv = [7u8; 32];
        let out = cipher
            .encrypt(
                GenericArray::from_slice(&iv),
                Payload {
                    msg: plain.as_bytes(),
                    aad: aad.as_bytes(),
                },
            )
            .unwrap();
        let (data, tag) = out.split_at(out.len() - 16);
        format!(
            "ENC[AES256_GCM,data:{},iv:{},tag:{},type:{kind}]",
            b64.encode(data),
            b64.encode(iv),
            b64.encode(tag)
        )
    }

    #[test]
    fn values_decrypt_only_under_their_own_path() {
        let key = [1u8; 32];
        let enc = seal("s3cr3t", &key, "db:password:", "str");
        let plain = decrypt(&enc, &key, "db:password:").unwrap();
        assert_eq!(
            (plain.text.as_slice(), plain.kind),
            (&b"s3cr3t"[..], PlainKind::Str)
        );
        let err = decrypt(&enc, &key, "db:user:").unwrap_err();
        assert!(err.starts_with("the value does not decrypt"), "{err}");
        assert!(decrypt(&enc, &[2u8; 32], "db:password:").is_err());
        assert_eq!(decrypt("", &key, "x:").unwrap().text, b"");
        assert!(decrypt("plain", &key, "x:").is_err());
    }
}
