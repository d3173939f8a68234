//! Secrets at rest: AES-256-GCM envelope encryption. Each secret gets its
//! own random data key; the data key is stored encrypted under the master
//! key. Both encryptions use a fresh random nonce and bind the resource name
//! as associated data, so sealed material copied to another resource's row
//! does not open.
//!
//! Sealed layout: `1` (format version) ‖ key nonce (12) ‖ wrapped data key
//! (32 + 16 tag) ‖ secret nonce (12) ‖ encrypted secret (n + 16 tag).

use crate::model::Sealed;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use std::fmt;

const VERSION: u8 = 1;
const NONCE: usize = 12;
const WRAPPED_KEY: usize = 32 + 16;

/// Holds the master key. Debug output shows nothing of it.
pub struct Vault {
    master: Aes256Gcm,
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Vault(..)")
    }
}

impl Vault {
    pub fn new(key: [u8; 32]) -> Vault {
        Vault {
            master: cipher(&key),
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

    /// Encrypt `secret` for the resource `name`.
    pub(crate) fn seal(&self, name: &str, secret: &[u8]) -> Sealed {
        let data_key: [u8; 32] = rand::random();
        let mut out = vec![VERSION];
        out.extend(encrypt(&self.master, name, &data_key));
        out.extend(encrypt(&cipher(&data_key), name, secret));
        Sealed(out)
    }

    /// The secret of the resource `name`; `None` when this master key (or
    /// that name) does not open it.
    pub(crate) fn open(&self, name: &str, sealed: &Sealed) -> Option<Vec<u8>> {
        let (&version, rest) = sealed.0.split_first()?;
        if version != VERSION || rest.len() < NONCE + WRAPPED_KEY + NONCE {
            return None;
        }
        let (wrapped, secret) = rest.split_at(NONCE + WRAPPED_KEY);
        let data_key = decrypt(&self.master, name, wrapped)?;
        decrypt(&cipher(data_key.as_slice().try_into().ok()?), name, secret)
    }
}

fn cipher(key: &[u8; 32]) -> Aes256Gcm {
    Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key))
}

/// Nonce ‖ ciphertext of `msg` under `cipher`, bound to `name`.
fn encrypt(cipher: &Aes256Gcm, name: &str, msg: &[u8]) -> Vec<u8> {
    let nonce: [u8; NONCE] = rand::random();
    let payload = Payload {
        msg,
        aad: name.as_bytes(),
    };
    let sealed = cipher
        .encrypt(Nonce::from_slice(&nonce), payload)
        .expect("AES-GCM encrypts any message this small");
    [nonce.as_slice(), &sealed].concat()
}

fn decrypt(cipher: &Aes256Gcm, name: &str, sealed: &[u8]) -> Option<Vec<u8>> {
    let (nonce, msg) = sealed.split_at_checked(NONCE)?;
    let payload = Payload {
        msg,
        aad: name.as_bytes(),
    };
    cipher.decrypt(Nonce::from_slice(nonce), payload).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_with_fresh_keys_and_opens_only_for_its_resource() {
        let vault = Vault::new([7; 32]);
        let a = vault.seal("api", b"s3cret-token");
        let b = vault.seal("api", b"s3cret-token");
        assert_ne!(a, b, "a fresh data key and nonces per encryption");
        assert!(!a.0.windows(12).any(|w| w == b"s3cret-token"));
        assert_eq!(vault.open("api", &a).as_deref(), Some(&b"s3cret-token"[..]));
        assert_eq!(vault.open("other", &a), None, "bound to the resource name");
        assert_eq!(
            Vault::new([8; 32]).open("api", &a),
            None,
            "wrong master key"
        );
        let mut tampered = a.clone();
        *tampered.0.last_mut().unwrap() ^= 1;
        assert_eq!(vault.open("api", &tampered), None);
        assert_eq!(vault.open("api", &Sealed(vec![1, 2, 3])), None);
        assert_eq!(format!("{vault:?} {a:?}"), "Vault(..) Sealed(..)");
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
