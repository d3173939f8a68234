//! Keeping a resource's secret from the guest when an upstream echoes it
//! back: every occurrence in response headers and body becomes
//! `[REDACTED]`, plain, percent-encoded (any case, `+` for a space, fully
//! or partly encoded) and base64-encoded (standard or URL-safe, padded or
//! not, also inside a longer encoded value such as `user:secret`).

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};

pub const REDACTED: &[u8] = b"[REDACTED]";

/// Shortest base64 fragment worth redacting; shorter ones would redact
/// unrelated text.
const MIN_FRAGMENT: usize = 4;

pub(crate) struct Redactor {
    /// What to look for; each byte may appear plain or percent-encoded.
    needles: Vec<Vec<u8>>,
}

impl Redactor {
    /// Nothing to redact (a resource without a secret).
    pub fn none() -> Redactor {
        Redactor {
            needles: Vec::new(),
        }
    }

    /// Redacts `secret`; an empty one is nothing to redact.
    pub fn new(secret: &[u8]) -> Redactor {
        if secret.is_empty() {
            return Redactor::none();
        }
        let mut needles = vec![secret.to_vec()];
        for fragment in base64_fragments(secret) {
            if fragment.len() >= MIN_FRAGMENT && !needles.contains(&fragment) {
                needles.push(fragment);
            }
        }
        Redactor { needles }
    }

    pub fn bytes(&self, data: &[u8]) -> Vec<u8> {
        if self.needles.is_empty() {
            return data.to_vec();
        }
        let mut out = Vec::with_capacity(data.len());
        let mut i = 0;
        while i < data.len() {
            let longest = self
                .needles
                .iter()
                .filter_map(|n| matched(n, &data[i..]))
                .max();
            match longest {
                Some(len) => {
                    out.extend_from_slice(REDACTED);
                    i += len;
                }
                None => {
                    out.push(data[i]);
                    i += 1;
                }
            }
        }
        out
    }

    pub fn text(&self, text: &str) -> String {
        String::from_utf8_lossy(&self.bytes(text.as_bytes())).into_owned()
    }
}

/// The base64 characters that depend on `secret` alone, for each of the
/// three alignments it can have inside a longer encoded value, in both
/// alphabets. (A value that starts with the secret encodes to a string
/// that starts with the first fragment, and so on.)
fn base64_fragments(secret: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for offset in 0..3usize {
        let padded = [&[0u8; 3][..offset], secret].concat();
        // Character i covers bits 6i..6i+6 of the input: keep those past
        // the padding and before the end.
        let first = (8 * offset).div_ceil(6);
        let last = 8 * padded.len() / 6;
        for alphabet in [STANDARD_NO_PAD, URL_SAFE_NO_PAD] {
            let encoded = alphabet.encode(&padded).into_bytes();
            if first < last {
                out.push(encoded[first..last].to_vec());
            }
        }
    }
    out
}

/// Bytes of `data` that spell `needle` from its start, each needle byte
/// plain or as `%XX`: the longer of a plain-first and an encoded-first
/// reading, since only a `%` in the needle makes the two differ.
fn matched(needle: &[u8], data: &[u8]) -> Option<usize> {
    spell(needle, data, false).max(spell(needle, data, true))
}

fn spell(needle: &[u8], data: &[u8], encoded_first: bool) -> Option<usize> {
    let mut at = 0;
    for &b in needle {
        let plain = (data.get(at) == Some(&b)).then_some(1);
        let escaped = (escape_at(data, at) == Some(b)).then_some(3);
        let plus = (b == b' ' && data.get(at) == Some(&b'+')).then_some(1);
        let step = if encoded_first {
            escaped.or(plain)
        } else {
            plain.or(escaped)
        };
        at += step.or(plus)?;
    }
    Some(at)
}

/// The byte `%XX` at `at` stands for.
fn escape_at(data: &[u8], at: usize) -> Option<u8> {
    match data.get(at..at + 3)? {
        [b'%', hi, lo] => {
            let hex = [*hi, *lo];
            u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE};

    fn redacted(secret: &str, text: &str) -> String {
        Redactor::new(secret.as_bytes()).text(text)
    }

    #[test]
    fn plain_and_percent_encoded_forms() {
        let s = "tok/en+a b%c";
        assert_eq!(redacted(s, "x tok/en+a b%c y"), "x [REDACTED] y");
        assert_eq!(redacted(s, "q=tok%2Fen%2Ba+b%25c&"), "q=[REDACTED]&");
        assert_eq!(redacted(s, "q=tok%2fen%2ba%20b%25c"), "q=[REDACTED]");
        assert_eq!(redacted(s, "%74%6F%6B/en+a b%c"), "[REDACTED]");
        assert_eq!(redacted("abc", "abcabc ab"), "[REDACTED][REDACTED] ab");
        assert_eq!(redacted("a%25", "a%25 a%2525"), "[REDACTED] [REDACTED]");
    }

    #[test]
    fn base64_forms_at_any_alignment() {
        let s = "sk-live-0123456789?>?";
        for encoded in [
            STANDARD.encode(s),
            URL_SAFE.encode(s),
            STANDARD_NO_PAD.encode(s),
            STANDARD.encode(format!("user:{s}")),
            STANDARD.encode(format!("ab:{s}:tail")),
            URL_SAFE_NO_PAD.encode(format!("Bearer {s}")),
        ] {
            let out = redacted(s, &encoded);
            assert!(out.contains("[REDACTED]"), "{encoded} -> {out}");
            for fragment in base64_fragments(s.as_bytes()) {
                let fragment = String::from_utf8(fragment).unwrap();
                assert!(!out.contains(&fragment), "{encoded} -> {out}");
            }
        }
    }

    #[test]
    fn nothing_else_changes() {
        let text = "nothing secret here, %zz, 100% +";
        assert_eq!(redacted("sk-live-abcdef", text), text);
        assert_eq!(Redactor::none().text(text), text);
        assert_eq!(Redactor::new(b"").text(text), text);
    }
}
