//! Test vectors checked against Python's `json.dumps` and `hashlib`.

use serde_json::Value;

use super::{input_hash, python_float_repr, stable_json};

/// Expected values computed on this machine with Python 3.11:
///
/// ```python
/// text = json.dumps(json.loads(case) if case is not None else None,
///                   sort_keys=True, separators=(",", ":"), ensure_ascii=False)
/// hashlib.sha256(text.encode("utf-8")).hexdigest()
/// ```
///
/// Each case is parsed from the same JSON text by both `json.loads` and
/// `serde_json`, which agree on int versus float.
#[test]
fn python_sdk_hash_vectors() {
    let cases: &[(Option<&str>, &str, &str)] = &[
        (
            None,
            "null",
            "74234e98afe7498fb5daf1f36ac2d78acc339464f950703b8c019892f982b90b",
        ),
        (
            Some(r#"{"topic":"tides"}"#),
            r#"{"topic":"tides"}"#,
            "c05ef271265d2515d7d0407fab5632661a0b805b0d6b047b902b61a08c86732b",
        ),
        (
            Some(r#"{"b":1,"a":[3,2,1],"c":{"z":null,"y":true,"x":false}}"#),
            r#"{"a":[3,2,1],"b":1,"c":{"x":false,"y":true,"z":null}}"#,
            "81475b462aaad67ce1a9c832e9672bf44e439e459a3e811b5d736627e696b040",
        ),
        (
            Some(
                "[1, 1.0, -2, -2.5, 0, 0.0, -0.0, 1e16, 1e15, 1e-5, 0.0001, 123456789.125, \
                 1.5e300, 9007199254740993, 18446744073709551615, -9223372036854775808, \
                 0.1, 100.0, 2.5e-7]",
            ),
            "[1,1.0,-2,-2.5,0,0.0,-0.0,1e+16,1000000000000000.0,1e-05,0.0001,123456789.125,\
             1.5e+300,9007199254740993,18446744073709551615,-9223372036854775808,0.1,100.0,\
             2.5e-07]",
            "e37a428f5d622a860f10ee681aba7c0a0d9b2ba5e4501617faf943469e12ea9b",
        ),
        (
            Some(
                r#"{"émoji":"🌊 tide","日本":"語","ascii":"a\"b\\c\n\t\u0001\u001f\u007f\b\f\r","é":1,"e":2,"z":3,"\u00e9t\u00e9":[]}"#,
            ),
            "{\"ascii\":\"a\\\"b\\\\c\\n\\t\\u0001\\u001f\u{7f}\\b\\f\\r\",\"e\":2,\"z\":3,\
             \"é\":1,\"émoji\":\"🌊 tide\",\"été\":[],\"日本\":\"語\"}",
            "c63112ebbd64fcf351b18abc06749675b1ea981c183d2f79b0047f4527158490",
        ),
        (
            Some(r#"{"outer":{"inner":{"list":[{"k":2,"j":1},[],{}],"n":-0.5}},"empty":""}"#),
            r#"{"empty":"","outer":{"inner":{"list":[{"j":1,"k":2},[],{}],"n":-0.5}}}"#,
            "603ad5c265278b7d53d8455ca985a12fce648fe96f97e54fc422af8daec86f9a",
        ),
        (
            Some(r#""just a string""#),
            r#""just a string""#,
            "3fe01def54b1c6cd795b2ebfcbab64150f6a507bce043040c662c682eebfed1e",
        ),
        (
            Some("3"),
            "3",
            "4e07408562bedb8b60ce05c1decfe3ad16b72230967de01f640b7e4729b49fce",
        ),
        (
            Some("3.0"),
            "3.0",
            "a416ea84421fa7e1351582da48235bac88380a337ec5cb5a9239dc7d57908b4b",
        ),
        (
            Some("{}"),
            "{}",
            "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
        ),
        (
            Some(r#"{"b":1,"a":[true,"é"]}"#),
            r#"{"a":[true,"é"],"b":1}"#,
            "83a3979059aec8e3857b1c8e232a8a54a415f02a223aeaa3ba97654ebef44020",
        ),
        // Floats in exponent form, where `serde_json`'s own output (`1e20`,
        // `1e-7`) differs from Python's and the host's hash used to disagree.
        (
            Some("[1e20, 1e22, 1e-7, 1.5e-10, 12345678901234567890.0, 1e16, 1e-5]"),
            "[1e+20,1e+22,1e-07,1.5e-10,1.2345678901234567e+19,1e+16,1e-05]",
            "5f895af1a965ab5a0354eca398e9a62113b8f58d0d650298dffff6c41d08d289",
        ),
        (
            Some(r#"{"amount":1e21,"rate":3e-6,"z":{"b":0.00001,"a":1e100}}"#),
            r#"{"amount":1e+21,"rate":3e-06,"z":{"a":1e+100,"b":1e-05}}"#,
            "065ab41271a697cbd6993854189d1ab798b94f2998995752bd535bef780a2413",
        ),
    ];
    for (case, text, hash) in cases {
        let value: Option<Value> = case.map(|c| serde_json::from_str(c).unwrap());
        if let Some(v) = &value {
            assert_eq!(stable_json(v), *text, "stable JSON of {case:?}");
        }
        assert_eq!(input_hash(value.as_ref()), *hash, "hash of {case:?}");
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
