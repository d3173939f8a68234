"""Fixtures: a real `tidebase-host serve` process per session, on a fresh database.

Environment:
  TIDEBASE_HOST_BIN           server binary (default <repo>/target/debug/tidebase-host)
  TIDEBASE_TEST_BACKEND       postgres (default) | sqlite
  TIDEBASE_TEST_DATABASE_URL  admin Postgres URL used to CREATE/DROP a fresh
                              database per server (default
                              postgres://postgres@127.0.0.1:5432/postgres)
  TIDEBASE_TEST_KEEP_DB=1     do not drop the Postgres databases at the end
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path
from typing import Optional
from urllib import parse as urlparse

import pytest

from helpers import http

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent

API_KEY = "sdk-test-key-" + uuid.uuid4().hex[:8]
STARTUP_TIMEOUT_S = 90.0  # first boot runs the migrations
SHUTDOWN_TIMEOUT_S = 10.0
LOG_TAIL_LINES = 60

# The test process itself must not pick up client-side settings from the
# caller's environment: every client in these tests is configured explicitly.
for _var in ("TIDEBASE_URL", "TIDEBASE_API_KEY", "TIDEBASE_WEBHOOK_SECRET"):
    os.environ.pop(_var, None)


def _server_bin() -> Path:
    raw = os.environ.get("TIDEBASE_HOST_BIN") or "target/debug/tidebase-host"
    path = Path(raw)
    if not path.is_absolute():
        path = REPO_ROOT / path
    return path


def _backend() -> str:
    backend = (os.environ.get("TIDEBASE_TEST_BACKEND") or "postgres").lower()
    if backend not in ("postgres", "sqlite"):
        raise pytest.UsageError(f"TIDEBASE_TEST_BACKEND must be postgres or sqlite, not {backend!r}")
    return backend


def _admin_url() -> str:
    return os.environ.get("TIDEBASE_TEST_DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/postgres"


def _psql(admin_url: str, sql: str) -> None:
    try:
        proc = subprocess.run(
            ["psql", admin_url, "-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except FileNotFoundError:  # pragma: no cover — environment problem
        raise RuntimeError("psql not found on PATH (needed to create the test database)") from None
    if proc.returncode != 0:
        raise RuntimeError(f"psql failed ({sql}): {proc.stderr.strip()}")


def _with_database(admin_url: str, dbname: str) -> str:
    parts = urlparse.urlsplit(admin_url)
    return urlparse.urlunsplit((parts.scheme, parts.netloc, "/" + dbname, parts.query, parts.fragment))


class Databases:
    """Creates one fresh database per server and drops them at the end."""

    def __init__(self, tmp_root: Path):
        self.backend = _backend()
        self.admin_url = _admin_url()
        self.tmp_root = tmp_root
        self.created: list = []

    def new(self, tag: str) -> str:
        if self.backend == "sqlite":
            directory = self.tmp_root / f"sqlite-{tag}-{uuid.uuid4().hex[:6]}"
            directory.mkdir(parents=True)
            return f"sqlite:{directory}/tb.db"
        dbname = f"tb_sdk_{tag}_{uuid.uuid4().hex[:10]}"
        _psql(self.admin_url, f'CREATE DATABASE "{dbname}"')
        self.created.append(dbname)
        return _with_database(self.admin_url, dbname)

    def drop_all(self) -> list:
        problems = []
        if os.environ.get("TIDEBASE_TEST_KEEP_DB") == "1":
            return problems
        for dbname in self.created:
            try:
                _psql(self.admin_url, f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
            except RuntimeError as e:
                problems.append(str(e))
        self.created.clear()
        return problems


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGTERM the server if the test process dies
    (e.g. killed by a timeout), so no orphaned servers are left behind (Linux only)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 — best effort
        pass


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        content = path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return "(no log file)"
    return "\n".join(content[-lines:]) if content else "(log is empty)"


_RUNNING_SERVERS: list = []


class Server:
    """One `tidebase-host serve` child process."""

    def __init__(self, name: str, database_url: str, log_dir: Path, env: Optional[dict] = None):
        self.name = name
        self.database_url = database_url
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_dir / f"server-{name}.log"
        self.extra_env = dict(env or {})
        self.proc: Optional[subprocess.Popen] = None

    @property
    def api_key(self) -> Optional[str]:
        return self.extra_env.get("TIDEBASE_API_KEY") or None

    def start(self) -> "Server":
        binary = _server_bin()
        if not binary.exists():
            raise RuntimeError(
                f"server binary not found: {binary} (build it with `cargo build`, or set TIDEBASE_HOST_BIN)"
            )
        env = {k: v for k, v in os.environ.items() if not k.startswith("TIDEBASE_")}
        env.update(
            {
                "DATABASE_URL": self.database_url,
                "PORT": str(self.port),
                "TIDEBASE_PUBLIC_URL": self.url,
                "TIDEBASE_BIND": "127.0.0.1",  # honoured by tidebase-host; loopback only
                "RUST_BACKTRACE": "1",
            }
        )
        env.update(self.extra_env)
        cmd = [str(binary), "serve", "--port", str(self.port), "--database-url", self.database_url]
        log = open(self.log_path, "wb")
        log.write(("$ " + " ".join(cmd) + "\n").encode())
        log.flush()
        self.proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            preexec_fn=_die_with_parent,
        )
        log.close()
        _RUNNING_SERVERS.append(self)
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        last = None
        while time.monotonic() < deadline:
            code = self.proc.poll()
            if code is not None:
                raise RuntimeError(
                    f"server {self.name} exited with {code} before becoming healthy; log tail:\n{_tail(self.log_path)}"
                )
            try:
                status, body, _ = http("GET", self.url + "/health", timeout=2)
                if status == 200 and body == {"ok": True}:
                    return self
                last = (status, body)
            except OSError as e:
                last = e
            time.sleep(0.1)
        self.proc.kill()
        raise RuntimeError(
            f"server {self.name} not healthy within {STARTUP_TIMEOUT_S}s (last /health: {last!r}); "
            f"log tail:\n{_tail(self.log_path)}"
        )

    def stop(self) -> Optional[str]:
        """SIGTERM; returns a problem description, or None when it exited 0 in time."""
        if self.proc is None:
            return None
        if self in _RUNNING_SERVERS:
            _RUNNING_SERVERS.remove(self)
        if self.proc.poll() is not None:
            return f"server {self.name} had already exited with {self.proc.returncode} before shutdown"
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=SHUTDOWN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            return f"server {self.name} did not exit within {SHUTDOWN_TIMEOUT_S}s of SIGTERM (killed)"
        if code != 0:
            return f"server {self.name} exited with status {code} after SIGTERM (expected 0)"
        return None

    def log_tail(self) -> str:
        return _tail(self.log_path)


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def databases(tmp_path_factory):
    dbs = Databases(tmp_path_factory.mktemp("tb-db"))
    yield dbs
    problems = dbs.drop_all()
    assert not problems, "; ".join(problems)


@pytest.fixture(scope="session")
def server_logs(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("tb-logs")


@pytest.fixture(scope="session")
def start_server(databases, server_logs):
    """Factory: start_server(name, env={...}) -> started Server; stopped at session end
    unless the caller stops it itself."""
    started: list = []

    def factory(name: str, env: Optional[dict] = None) -> Server:
        srv = Server(name, databases.new(name), server_logs, env)
        started.append(srv)
        return srv.start()

    yield factory
    problems = [p for p in (srv.stop() for srv in started if srv.proc and srv.proc.returncode is None) if p]
    assert not problems, "; ".join(problems) + "\n" + "\n".join(
        f"--- {s.name} log tail ---\n{s.log_tail()}" for s in started
    )


@pytest.fixture(scope="session")
def server(start_server) -> Server:
    return start_server("main", {"TIDEBASE_LEASE_MS": "60000"})


@pytest.fixture(scope="session")
def base_url(server) -> str:
    return server.url


@pytest.fixture(scope="session")
def auth_server(start_server) -> Server:
    return start_server("auth", {"TIDEBASE_API_KEY": API_KEY})


@pytest.fixture
def tide(base_url):
    from tidebase import Tidebase

    return Tidebase(url=base_url)


@pytest.fixture(scope="session")
def api_key() -> str:
    return API_KEY


@pytest.fixture
def tide_auth(auth_server):
    from tidebase import Tidebase

    return Tidebase(url=auth_server.url, api_key=API_KEY)


@pytest.fixture
def webhook_receiver():
    from helpers import WebhookReceiver

    receiver = WebhookReceiver()
    yield receiver
    receiver.close()


# ------------------------------------------------ report header, log tail on failure


def pytest_report_header(config):
    from helpers import SDK_VERSION

    return f"tidebase client {SDK_VERSION}, backend {_backend()}, server {_server_bin()}"



@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for srv in list(_RUNNING_SERVERS):
            report.sections.append((f"tidebase-host [{srv.name}] log tail ({srv.log_path})", srv.log_tail()))
