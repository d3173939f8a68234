//! Stable JSON and step input hashes, byte-for-byte like the Python SDK.
//!
//! The one implementation the host (for wasm steps that send no hash, and its
//! hidden recorded-value steps) and the Rust guest SDK share.
//!
//! The Python SDK hashes `json.dumps(input, sort_keys=True, separators=(",", ":"),
//! ensure_ascii=False)`. The server compares the hash on replay, so a run started
//! by one SDK and resumed by another only replays if both write the same bytes.
//! This module writes them itself instead of relying on `serde_json`'s output:
//! object key order depends on serde_json's `preserve_order` feature (which any
//! crate in the build can switch on), and Python formats floats differently
//! (`1e+16`, `1e-05`).

use serde_json::{Number, Value};
use sha2::{Digest, Sha256};

/// The stable JSON text of `value`: object keys sorted by code point, no
/// whitespace, non-ASCII characters kept, numbers written as Python writes them.
///
/// Integers that do not fit in `i64`/`u64` cannot be represented in a
/// [`serde_json::Value`] without serde_json's `arbitrary_precision` feature and
/// are hashed as floats; Python would keep them exact.
pub fn stable_json(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value);
    out
}

/// Lowercase hex SHA-256 of the stable JSON of `input`, `null` when there is none.
/// This is the `inputHash` the SDK sends with every step.
pub fn input_hash(input: Option<&Value>) -> String {
    let text = input.map_or_else(|| "null".to_owned(), stable_json);
    let digest = Sha256::digest(text.as_bytes());
    let mut hex = String::with_capacity(64);
    for byte in digest {
        hex.push(char::from(HEX[usize::from(byte >> 4)]));
        hex.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    hex
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            // Rust orders `str` by UTF-8 bytes, which is code point order, the
            // order Python's `sorted` gives.
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(out, key);
                out.push(':');
                write_value(out, item);
            }
            out.push('}');
        }
    }
}

fn write_number(out: &mut String, n: &Number) {
    if let Some(i) = n.as_i64() {
        out.push_str(&i.to_string());
    } else if let Some(u) = n.as_u64() {
        out.push_str(&u.to_string());
    } else if let Some(f) = n.as_f64() {
        out.push_str(&python_float_repr(f));
    } else {
        // Unreachable without `arbitrary_precision`; keep whatever serde_json wrote.
        out.push_str(&n.to_string());
    }
}

/// Python's `repr(float)`, which `json.dumps` uses: the shortest digits that
/// round-trip, in positional notation when the decimal exponent is in
/// `-4..16`, otherwise as `d.ddde±XX`.
fn python_float_repr(f: f64) -> String {
    if f.is_nan() {
        return "NaN".to_owned();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.to_owned();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0" } else { "0.0" }.to_owned();
    }
    // Rust's `{:e}` prints the shortest round-tripping digits, e.g. `-1.2345e-7`.
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').expect("`{:e}` always has an exponent");
    let exp: i32 = exp.parse().expect("`{:e}` exponent is an integer");
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    // Position of the decimal point relative to the digits: value = 0.DIGITS × 10^point.
    let point = exp + 1;
    let mut out = String::from(sign);
    if (-3..=16).contains(&point) {
        let n = digits.len() as i32;
        if point <= 0 {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-point) as usize));
            out.push_str(&digits);
        } else if point >= n {
            out.push_str(&digits);
            out.extend(std::iter::repeat_n('0', (point - n) as usize));
            out.push_str(".0");
        } else {
            out.push_str(&digits[..point as usize]);
            out.push('.');
            out.push_str(&digits[point as usize..]);
        }
    } else {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let e = point - 1;
        out.push_str(if e < 0 { "e-" } else { "e+" });
        out.push_str(&format!("{:02}", e.abs()));
    }
    out
}

/// A JSON string literal escaped like Python's `json.dumps(..., ensure_ascii=False)`:
/// only `"`, `\` and control characters below U+0020 are escaped.
fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if u32::from(c) < 0x20 => {
                out.push_str(&format!("\\u{:04x}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests;
