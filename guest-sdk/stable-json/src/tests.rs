//! Test vectors checked against Python's `json.dumps` and `hashlib`.

use serde_json::Value;

use super::{input_hash, python_float_repr, stable_json};

/// The shared vectors (`vectors.json`, also checked by the Python guest SDK's
/// tests against the `tidebase` SDK): each input is parsed from the same
/// JSON text by both `json.loads` and `serde_json`, which agree on int
/// versus float, and must give Python's stable JSON and hash.
#[test]
fn python_sdk_hash_vectors() {
    let vectors: Value =
        serde_json::from_str(include_str!("../vectors.json")).expect("vectors.json is JSON");
    let cases = vectors["cases"].as_array().expect("cases");
    assert!(cases.len() > 10);
    for case in cases {
        let input = case["input"].as_str();
        let value: Option<Value> = input.map(|c| serde_json::from_str(c).unwrap());
        let text = value
            .as_ref()
            .map_or_else(|| "null".to_owned(), stable_json);
        assert_eq!(text, case["stable"], "stable JSON of {input:?}");
        assert_eq!(
            input_hash(value.as_ref()),
            case["hash"],
            "hash of {input:?}"
        );
    }
}

/// Python `repr` of floats across the positional/exponent boundaries
/// (values from `python3 -c 'print(repr(x))'`).
#[test]
fn float_repr_matches_python() {
    let cases = [
        (1.0, "1.0"),
        (-1.5, "-1.5"),
        (0.1 + 0.2, "0.30000000000000004"),
        (1e16, "1e+16"),
        (9999999999999998.0, "9999999999999998.0"),
        (1e-4, "0.0001"),
        (1.234e-5, "1.234e-05"),
        (5e-324, "5e-324"),
        (f64::MAX, "1.7976931348623157e+308"),
        (123.456, "123.456"),
        (-0.0, "-0.0"),
        (1e100, "1e+100"),
    ];
    for (value, expected) in cases {
        assert_eq!(python_float_repr(value), expected, "repr of {value:e}");
    }
}
