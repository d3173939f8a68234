"""Fixtures: `tidebase-host serve` processes (the Python client suite's
harness, loaded from tests/sdk-python), example components, and the
system's Chromium driven by Playwright.

Environment (see run.sh): TIDEBASE_HOST_BIN, TIDEBASE_TEST_BACKEND,
TIDEBASE_TEST_DATABASE_URL, TIDEBASE_CHROMIUM, TIDEBASE_STUDIO_SCREENSHOTS.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import urllib.request
import uuid
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
SDK_SUITE = ROOT / "tests" / "sdk-python"
TARGET = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target")
COMPONENTS = TARGET / "wasm-fixtures" / "wasm32-wasip2" / "release"

# The server harness (fresh database per server, health wait, clean stop)
# is the client suite's; load it under its own name rather than copy it.
sys.path.insert(0, str(SDK_SUITE))
_spec = importlib.util.spec_from_file_location("sdk_harness", SDK_SUITE / "conftest.py")
harness = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(harness)

# Its fixtures, used here as they are.
databases = harness.databases
server_logs = harness.server_logs
start_server = harness.start_server
pytest_runtest_makereport = harness.pytest_runtest_makereport

API_KEY = "studio-key-" + uuid.uuid4().hex[:8]


def component(name: str) -> bytes:
    path = COMPONENTS / f"{name}.wasm"
    if not path.exists():
        pytest.fail(f"{path} is missing: build the example components first (cargo build -p tidebase-fixtures)")
    return path.read_bytes()


def deploy(base_url: str, workflow: str, wasm: str, key: str | None = None) -> dict:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    req = urllib.request.Request(f"{base_url}/workflows/{workflow}", data=component(wasm), method="POST", headers=headers)
    with urllib.request.urlopen(req, timeout=60) as res:
        return json.loads(res.read())["deployment"]


@pytest.fixture(scope="session")
def server(start_server):
    return start_server("studio")


@pytest.fixture(scope="session")
def auth_server(start_server):
    return start_server("studio-auth", {"TIDEBASE_API_KEY": API_KEY})


@pytest.fixture(scope="session")
def api_key() -> str:
    return API_KEY


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    executable = os.environ.get("TIDEBASE_CHROMIUM") or "/usr/bin/chromium"
    # Chromium's sandbox cannot start as root (CI runs as root).
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, args=args)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    """A fresh browser context (own sessionStorage) per test; uncaught page
    errors fail the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    errors: list = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    context.close()
    assert not errors, f"errors in the page: {errors}"


@pytest.fixture(scope="session")
def screenshots() -> Path:
    out = Path(os.environ.get("TIDEBASE_STUDIO_SCREENSHOTS") or HERE / "screenshots")
    out.mkdir(parents=True, exist_ok=True)
    return out


def pytest_report_header(config):
    return (
        f"backend {harness._backend()}, server {harness._server_bin()}, "
        f"browser {os.environ.get('TIDEBASE_CHROMIUM') or '/usr/bin/chromium'}"
    )
