//! Step input hashes as the SDKs compute them: lowercase hex SHA-256 of the
//! "stable JSON" of the input (object keys sorted, no whitespace, non-ASCII
//! kept), so one step hashes the same from Python, TypeScript and wasm.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// `serde_json`'s map is ordered by key, which is the code-point order
/// Python's `sort_keys` uses, and its compact form matches
/// `separators=(",", ":")` with `ensure_ascii=False`.
pub fn stable_hash(input: &Value) -> String {
    hex::encode(Sha256::digest(input.to_string().as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::stable_hash;
    use serde_json::json;

    #[test]
    fn matches_the_python_sdk() {
        // python3 -c 'import json,hashlib;print(hashlib.sha256(json.dumps(x,sort_keys=True,separators=(",",":"),ensure_ascii=False).encode()).hexdigest())'
        assert_eq!(
            stable_hash(&json!(null)),
            "74234e98afe7498fb5daf1f36ac2d78acc339464f950703b8c019892f982b90b"
        );
        assert_eq!(
            stable_hash(&json!({"b": 1, "a": [true, "é"]})),
            "83a3979059aec8e3857b1c8e232a8a54a415f02a223aeaa3ba97654ebef44020"
        );
    }
}
