//! Secrets at rest: AES-256-GCM envelope encryption. Each secret gets its
//! own random data key; the data key is stored encrypted under the master
//! key. Both encryptions use a fresh random nonce and bind the resource
//! (its tenant and name) as associated data, so sealed material copied to
//! another resource's row does not open.
//!
//! Sealed layout, version 2: `2` ‖ key id length (1) ‖ key id (`local:<label>`,
//! `TIDEBASE_MASTER_KEY_LABEL`) ‖ key nonce (12) ‖ wrapped data key
//! (32 + 16 tag) ‖ secret nonce (12) ‖ encrypted secret (n + 16 tag). The key
//! id is bound into both encryptions too; material sealed under another
//! label does not open, even with the same key. Version 1 (sealed before
//! key ids) has no key id and still opens.

use crate::model::Sealed;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use std::fmt;
use subtle::ConstantTimeEq;

/// Without a key id.
const VERSION_1: u8 = 1;
const VERSION: u8 = 2;
/// The label of a master key no `TIDEBASE_MASTER_KEY_LABEL` names.
pub const DEFAULT_KEY_LABEL: &str = "v1";
const NONCE: usize = 12;
const WRAPPED_KEY: usize = 32 + 16;

/// Holds the master key. Debug output shows nothing of it.
pub struct Vault {
    master: Aes256Gcm,
    /// `local:<label>`, sealed with every secret.
    key_id: String,
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Vault(..)")
    }
}

impl Vault {
    pub fn new(key: [u8; 32]) -> Vault {
        Vault::labelled(key, DEFAULT_KEY_LABEL)
    }

    /// A vault whose key is labelled `label` (at most 200 bytes; longer
    /// labels are cut, since the label only has to tell keys apart).
    pub fn labelled(key: [u8; 32], label: &str) -> Vault {
        let mut key_id = format!("local:{label}");
        let mut end = key_id.len().min(u8::MAX as usize);
        while !key_id.is_char_boundary(end) {
            end -= 1;
        }
        key_id.truncate(end);
        Vault {
            master: cipher(&key),
            key_id,
        }
    }

    /// A master key from its text form: 64 hex digits, or 32 bytes in
    /// base64 (standard or URL-safe, padded or not). Surrounding whitespace
    /// (a key file's newline) is ignored.
    pub fn parse_key(text: &str) -> Result<[u8; 32], String> {
        let text = text.trim();
        let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(text).ok()
        } else {
            let unpadded = text
                .trim_end_matches('=')
                .replace('+', "-")
                .replace('/', "_");
            URL_SAFE_NO_PAD.decode(unpadded).ok()
        };
        bytes
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| "a master key is 32 bytes as 64 hex digits or base64".to_string())
    }

    /// A new random master key in the text form [`Vault::parse_key`]
    /// reads (standard base64), for a generated key file.
    pub fn generate_key_text() -> String {
        STANDARD.encode(rand::random::<[u8; 32]>())
    }

    /// Encrypt `secret` for the resource `name` of `principal`.
    pub(crate) fn seal(&self, principal: Option<&str>, name: &str, secret: &[u8]) -> Sealed {
        let aad = binding(&self.key_id, principal, name);
        let data_key: [u8; 32] = rand::random();
        let mut out = vec![VERSION, self.key_id.len() as u8];
        out.extend(self.key_id.as_bytes());
        out.extend(encrypt(&self.master, &aad, &data_key));
        out.extend(encrypt(&cipher(&data_key), &aad, secret));
        Sealed(out)
    }

    /// The secret of the resource `name` of `principal`; `None` when this
    /// master key (or its label, or that resource) does not open it.
    pub(crate) fn open(
        &self,
        principal: Option<&str>,
        name: &str,
        sealed: &Sealed,
    ) -> Option<Vec<u8>> {
        let (&version, rest) = sealed.0.split_first()?;
        let (aad, rest) = match version {
            VERSION_1 if principal.is_none() => (name.as_bytes().to_vec(), rest),
            VERSION => {
                let (&len, rest) = rest.split_first()?;
                let (key_id, rest) = rest.split_at_checked(len as usize)?;
                let same: bool = key_id.ct_eq(self.key_id.as_bytes()).into();
                if !same {
                    return None;
                }
                (binding(&self.key_id, principal, name), rest)
            }
            _ => return None,
        };
        if rest.len() < NONCE + WRAPPED_KEY + NONCE {
            return None;
        }
        let (wrapped, secret) = rest.split_at(NONCE + WRAPPED_KEY);
        let data_key = decrypt(&self.master, &aad, wrapped)?;
        decrypt(&cipher(data_key.as_slice().try_into().ok()?), &aad, secret)
    }
}

/// The associated data of a version 2 seal: key id, tenant and name,
/// NUL-separated (no stored text holds a NUL).
fn binding(key_id: &str, principal: Option<&str>, name: &str) -> Vec<u8> {
    [key_id, principal.unwrap_or_default(), name]
        .join("\0")
        .into_bytes()
}

fn cipher(key: &[u8; 32]) -> Aes256Gcm {
    Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key))
}

/// Nonce ‖ ciphertext of `msg` under `cipher`, bound to `aad`.
fn encrypt(cipher: &Aes256Gcm, aad: &[u8], msg: &[u8]) -> Vec<u8> {
    let nonce: [u8; NONCE] = rand::random();
    let payload = Payload { msg, aad };
    let sealed = cipher
        .encrypt(Nonce::from_slice(&nonce), payload)
        .expect("AES-GCM encrypts any message this small");
    [nonce.as_slice(), &sealed].concat()
}

fn decrypt(cipher: &Aes256Gcm, aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
    let (nonce, msg) = sealed.split_at_checked(NONCE)?;
    let payload = Payload { msg, aad };
    cipher.decrypt(Nonce::from_slice(nonce), payload).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_with_fresh_keys_and_opens_only_for_its_resource() {
        let vault = Vault::new([7; 32]);
        let a = vault.seal(None, "api", b"s3cret-token");
        let b = vault.seal(None, "api", b"s3cret-token");
        assert_ne!(a, b, "a fresh data key and nonces per encryption");
        assert!(!a.0.windows(12).any(|w| w == b"s3cret-token"));
        let open = |v: &Vault, p: Option<&str>, name: &str, s: &Sealed| v.open(p, name, s);
        assert_eq!(
            open(&vault, None, "api", &a).as_deref(),
            Some(&b"s3cret-token"[..])
        );
        assert_eq!(open(&vault, None, "other", &a), None, "bound to the name");
        assert_eq!(open(&vault, Some("acme"), "api", &a), None, "and tenant");
        let tenant = vault.seal(Some("acme"), "api", b"t");
        assert_eq!(
            open(&vault, Some("acme"), "api", &tenant).as_deref(),
            Some(&b"t"[..])
        );
        assert_eq!(open(&vault, None, "api", &tenant), None);
        assert_eq!(open(&vault, Some("acm"), "eapi", &tenant), None);
        assert_eq!(
            open(&Vault::new([8; 32]), None, "api", &a),
            None,
            "wrong master key"
        );
        assert_eq!(
            open(&Vault::labelled([7; 32], "v2"), None, "api", &a),
            None,
            "same key under another label"
        );
        let mut tampered = a.clone();
        *tampered.0.last_mut().unwrap() ^= 1;
        assert_eq!(open(&vault, None, "api", &tampered), None);
        assert_eq!(open(&vault, None, "api", &Sealed(vec![2, 3])), None);
        assert_eq!(open(&vault, None, "api", &Sealed(vec![1, 2, 3])), None);
        assert_eq!(format!("{vault:?} {a:?}"), "Vault(..) Sealed(..)");
    }

    /// Version 1 material (before key ids): name-bound, no key id.
    #[test]
    fn version_1_material_still_opens() {
        let key = [9; 32];
        let data_key = [3; 32];
        let mut v1 = vec![VERSION_1];
        v1.extend(encrypt(&cipher(&key), b"api", &data_key));
        v1.extend(encrypt(&cipher(&data_key), b"api", b"old-secret"));
        let v1 = Sealed(v1);
        let vault = Vault::labelled(key, "anything");
        assert_eq!(
            vault.open(None, "api", &v1).as_deref(),
            Some(&b"old-secret"[..])
        );
        assert_eq!(vault.open(None, "other", &v1), None);
        assert_eq!(vault.open(Some("acme"), "api", &v1), None);
    }

    #[test]
    fn keys_parse_from_hex_and_base64() {
        let key = [0xab; 32];
        for text in [
            hex::encode(key),
            STANDARD.encode(key),
            URL_SAFE_NO_PAD.encode(key),
            format!("{}\n", STANDARD.encode(key)),
        ] {
            assert_eq!(Vault::parse_key(&text), Ok(key), "{text:?}");
        }
        for bad in ["", "abc", &hex::encode([1; 31]), &STANDARD.encode([1; 33])] {
            assert!(Vault::parse_key(bad).is_err(), "{bad:?}");
        }
        let generated = Vault::generate_key_text();
        assert!(Vault::parse_key(&generated).is_ok());
        assert_ne!(generated, Vault::generate_key_text());
    }
}
