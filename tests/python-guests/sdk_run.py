"""Runs tests/python-guests/probe.py through the real Tidebase Python SDK.

    python3 sdk_run.py BASE_URL WORKFLOW_NAME INPUT_JSON

Creates a run of WORKFLOW_NAME (not deployed, so the host's worker leaves
it to this client), executes the probe function with the SDK's
`Tidebase.run` and prints the run id. Used by tests/e2e/python.rs to
compare the step input hashes of the SDK with those of the component.
"""

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent / "guest-sdk" / "python"))  # tidebase_guest
sys.path.insert(0, str(HERE))

from tidebase import Tidebase  # noqa: E402

import probe  # noqa: E402

base, workflow, text = sys.argv[1:4]
tide = Tidebase(url=base)
run = tide.runs.create(workflow, input=json.loads(text))
tide.run(workflow, probe.probe, run_id=run["id"])
print(run["id"])
