"""The guest SDK's stable JSON against the shared vectors
(guest-sdk/stable-json/vectors.json, also read by the Rust tests) and, when
the `tidebase` SDK is importable, against the SDK's own hashing.

    python3 -m unittest discover -s guest-sdk/python/tests
"""

import json
import sys
import unittest
from pathlib import Path

SDK = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(SDK))

from tidebase_guest import input_hash, stable_json  # noqa: E402

VECTORS = json.loads((SDK.parent / "stable-json" / "vectors.json").read_text("utf-8"))["cases"]


def value(case):
    return None if case["input"] is None else json.loads(case["input"])


class Vectors(unittest.TestCase):
    def test_guest_sdk_matches_the_vectors(self):
        for case in VECTORS:
            with self.subTest(case=case["input"]):
                self.assertEqual(stable_json(value(case)), case["stable"])
                self.assertEqual(input_hash(value(case)), case["hash"])

    def test_python_sdk_matches_the_vectors(self):
        try:
            import tidebase
        except ImportError:
            self.skipTest("the tidebase SDK is not installed in this Python")
        for case in VECTORS:
            with self.subTest(case=case["input"]):
                self.assertEqual(tidebase._hash_stable(value(case)), case["hash"])


if __name__ == "__main__":
    unittest.main()
