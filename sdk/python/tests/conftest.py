"""Fixtures: the real Tame server, started from the binary in ``TAME_BIN``
(``target/debug/tame`` by default) on a free port with a fresh SQLite
database; a few variants of it (API keys, tiny rate limits, a request timeout
of zero); an address where nothing listens; a socket server that accepts and
never answers; an HTTP server that answers whatever a test tells it to; a
clean SDK configuration for every test; and ``watch``, which records what a
client sends and the waits it asks for."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple, Union

import httpx
import pytest

import tamesdk
import tamesdk.config
import tamesdk.decorators

REPO_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_POLICY = REPO_ROOT / "policies" / "default.yaml"
TAME_BIN = Path(os.environ.get("TAME_BIN") or REPO_ROOT / "target" / "debug" / "tame")
TAMESDK_CLI = Path(sys.executable).parent / "tamesdk"

#: The keys of ``auth_server``, by name.
KEYS = {
    "agent": "agent-key-0123456789abcdef",
    "agent2": "agent2-key-0123456789abcdef",
    "approver": "approver-key-0123456789abcdef",
    "admin": "admin-key-0123456789abcdef",
}


@dataclass
class TameServer:
    """A running ``tame serve``."""

    url: str
    process: subprocess.Popen[bytes]
    directory: Path
    log: Path
    #: API keys by name (``agent``, ``approver``, ...), when it has any.
    keys: Dict[str, str] = field(default_factory=dict)
    #: The environment it was started with.
    env: Dict[str, str] = field(default_factory=dict)

    def decisions(self, session_id: str) -> List[sqlite3.Row]:
        """The decision rows of a session, read from the database itself."""
        db = sqlite3.connect(f"file:{self.directory / 'tame.db'}?mode=ro", uri=True)
        db.row_factory = sqlite3.Row
        try:
            return db.execute(
                "SELECT * FROM audit_log WHERE kind = 'decision' AND session_id = ? ORDER BY seq",
                (session_id,),
            ).fetchall()
        finally:
            db.close()

    def decision_count(self) -> int:
        """How many decisions the server has recorded in all, read from its database."""
        db = sqlite3.connect(f"file:{self.directory / 'tame.db'}?mode=ro", uri=True)
        try:
            (count,) = db.execute(
                "SELECT count(*) FROM audit_log WHERE kind = 'decision'"
            ).fetchone()
            return int(count)
        finally:
            db.close()

    def terminate(self) -> None:
        """Stop the process (SIGTERM: a graceful shutdown), keeping the database."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def restart(self) -> None:
        """Stop the server and start it again on the same address and database."""
        self.terminate()
        env = dict(self.env, TAME_BIND=self.url[len("http://") :])
        self.log = self.directory / f"server-{time.monotonic_ns()}.log"
        self.process, _ = spawn(env, self.directory, self.log)
        wait_for_health(self)

    def stop(self) -> None:
        """Stop the server and remove its database and log."""
        self.terminate()
        shutil.rmtree(self.directory, ignore_errors=True)


def spawn(env: Dict[str, str], directory: Path, log: Path) -> Tuple[subprocess.Popen[bytes], str]:
    """Start ``tame serve``; return the process and the address it serves on."""
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [str(TAME_BIN), "serve"], cwd=directory, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            pytest.fail(f"tame serve exited with {process.returncode}:\n{log.read_text()}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"tame serve did not start:\n{log.read_text()}")
        for line in log.read_text().splitlines():
            if "tame is serving" in line:
                return process, str(json.loads(line)["fields"]["address"])
        time.sleep(0.02)


def wait_for_health(server: TameServer) -> None:
    """Until the server answers ``/health``."""
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{server.url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            pytest.fail(f"tame serve does not answer /health:\n{server.log.read_text()}")
        time.sleep(0.02)


def start_server(
    policy_yaml: Optional[str] = None, keys: Optional[Dict[str, str]] = None, **settings: str
) -> TameServer:
    """Start ``tame serve`` on a free port with a fresh database and the
    default policy (or ``policy_yaml``); ``settings`` are extra environment
    variables (``TAME_LIMITS__OPEN__BURST=...``)."""
    if not TAME_BIN.is_file():
        pytest.fail(f"no tame binary at {TAME_BIN}: run `cargo build --bin tame` or set TAME_BIN")
    directory = Path(tempfile.mkdtemp(prefix="tame-sdk-test-"))
    policy = DEFAULT_POLICY
    if policy_yaml is not None:
        policy = directory / "policy.yaml"
        policy.write_text(policy_yaml)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAME_")}
    env.update(
        TAME_BIND="127.0.0.1:0",
        TAME_DATABASE_URL=f"sqlite://{directory / 'tame.db'}",
        TAME_POLICY_PATH=str(policy),
        TAME_WATCH_POLICY="false",
        TAME_LOG_FORMAT="json",
    )
    env.update(settings)
    if keys:
        roles = ",".join(f"{name.rstrip('0123456789')}:{key}" for name, key in keys.items())
        env["TAME_API_KEYS"] = roles
    log = directory / "server.log"
    process, address = spawn(env, directory, log)
    server = TameServer(f"http://{address}", process, directory, log, dict(keys or {}), env)
    wait_for_health(server)
    return server


@pytest.fixture(scope="session")
def server() -> Iterator[TameServer]:
    """The server with the shipped default policy, open (no keys)."""
    s = start_server()
    yield s
    s.stop()


@pytest.fixture(scope="session")
def auth_server() -> Iterator[TameServer]:
    """The server with API keys (its ``keys``): agent (two), approver and admin."""
    s = start_server(keys=KEYS)
    yield s
    s.stop()


@pytest.fixture(scope="session")
def limited_server() -> Iterator[TameServer]:
    """An open server whose rate limit is one request a second, burst two."""
    s = start_server(TAME_LIMITS__OPEN__PER_SECOND="1", TAME_LIMITS__OPEN__BURST="2")
    yield s
    s.stop()


@pytest.fixture(scope="session")
def unavailable_server() -> Iterator[TameServer]:
    """A server whose request timeout is zero: a decision in a session it has
    not loaded yet (loading takes a database read) is answered 503, with
    nothing recorded; /health still answers."""
    s = start_server(TAME_LIMITS__REQUEST_TIMEOUT_SECS="0")
    yield s
    s.stop()


@pytest.fixture(scope="session")
def policy_server() -> Iterator[Callable[[str], TameServer]]:
    """Start servers with a policy given as YAML text (stopped at the end)."""
    started: List[TameServer] = []

    def start(policy_yaml: str) -> TameServer:
        s = start_server(policy_yaml=policy_yaml)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


@dataclass
class Traffic:
    """What a client did: ``requests`` it sent (``METHOD path?query``, also
    those that could not connect), the ``statuses`` of the answers, and the
    ``delays`` it asked to wait before retries (not waited: recorded only)."""

    requests: List[str] = field(default_factory=list)
    statuses: List[int] = field(default_factory=list)
    delays: List[float] = field(default_factory=list)
    #: Set at each request sent, for a test to wait on.
    sent: threading.Event = field(default_factory=threading.Event)


def watch(client: Union[tamesdk.Client, tamesdk.AsyncClient], *, wait: bool = False) -> Traffic:
    """Record what ``client`` sends and receives from now on (through httpx's
    event hooks, which see every attempt), and the retry waits it asks for,
    which are then not waited (unless ``wait``)."""
    traffic = Traffic()

    def request(r: httpx.Request) -> None:
        traffic.requests.append(f"{r.method} {r.url.raw_path.decode()}")
        traffic.sent.set()

    def response(r: httpx.Response) -> None:
        traffic.statuses.append(r.status_code)

    if isinstance(client, tamesdk.AsyncClient):

        async def arequest(r: httpx.Request) -> None:
            request(r)

        async def aresponse(r: httpx.Response) -> None:
            response(r)

        async def asleep(delay: float) -> None:
            traffic.delays.append(delay)
            if wait:
                await asyncio.sleep(delay)

        client._http.event_hooks = {"request": [arequest], "response": [aresponse]}
        client._sleep = asleep
    else:

        def sleep(delay: float) -> None:
            traffic.delays.append(delay)
            if wait:
                time.sleep(delay)

        client._http.event_hooks = {"request": [request], "response": [response]}
        client._sleep = sleep
    return traffic


def pending_approval(approver: tamesdk.Client, session_id: str) -> tamesdk.Approval:
    """What an approver does: find the pending approval of a session in the
    list, once it is there (looked for ten times a second, for up to 30 s:
    approver keys have a small rate limit)."""
    for _ in range(300):
        for approval in approver.list_approvals(status="pending"):
            if approval.session_id == session_id:
                return approval
        time.sleep(0.1)
    pytest.fail(f"no pending approval for session {session_id}")


def nested(depth: int) -> Dict[str, Any]:
    """A mapping ``depth`` levels deep: ``{"a": {"a": ... {}}}``."""
    outer: Dict[str, Any] = {}
    inner = outer
    for _ in range(depth - 1):
        inner["a"] = {}
        inner = inner["a"]
    return outer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def dead_url() -> str:
    """An address where nothing listens: connections are refused."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture
def silent_url() -> Iterator[str]:
    """A server that accepts connections and reads, but never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: List[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            accepted.append(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    listener.close()


@dataclass
class Answering:
    """A stand-in server that answers every request with ``status`` and
    ``body`` (sent as JSON text), whatever was asked."""

    url: str = ""
    status: int = 200
    body: str = "{}"
    #: What it was sent: ``METHOD path?query``.
    requests: List[str] = field(default_factory=list)


@pytest.fixture
def answering() -> Iterator[Answering]:
    """An HTTP server standing in for Tame, to give the SDK answers the real
    server never gives (a malformed decision, say)."""
    state = Answering()

    class Handler(BaseHTTPRequestHandler):
        def answer(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            state.requests.append(f"{self.command} {self.path}")
            data = state.body.encode()
            self.send_response(state.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = answer

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield state
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture(autouse=True)
def clean_sdk(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Every test starts with no TAME_* variable, a HOME of its own (so no
    ~/.tame/config.yaml), and no global configuration or default client."""
    for name in list(os.environ):
        if name.startswith("TAME_"):
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setattr(tamesdk.config, "_config", None)
    monkeypatch.setattr(tamesdk.decorators, "_session", None)
    monkeypatch.setattr(tamesdk.decorators, "_sync_default", None)
    yield
    default = tamesdk.decorators._sync_default
    if default is not None:
        default[1].close()


@pytest.fixture
def configured(server: TameServer) -> tamesdk.Config:
    """The global configuration pointed at the default server."""
    return tamesdk.configure(api_url=server.url)


CliRunner = Callable[..., "subprocess.CompletedProcess[str]"]


@pytest.fixture
def cli(tmp_path: Path) -> CliRunner:
    """Run the installed ``tamesdk`` command as a subprocess, its output piped,
    with no TAME_* variable but those given and the test's own HOME."""

    def run(
        *args: str, env: Optional[Dict[str, str]] = None, input: Optional[str] = None
    ) -> subprocess.CompletedProcess[str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith("TAME_")}
        base["HOME"] = str(tmp_path / "home")
        base.update(env or {})
        return subprocess.run(
            [str(TAMESDK_CLI), *args],
            env=base,
            input=input,
            capture_output=True,
            text=True,
            timeout=60,
        )

    return run
