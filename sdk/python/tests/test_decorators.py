"""The decorators against the real server: what they keep of the function,
how call arguments become tool_args, what they raise, what they report."""

from __future__ import annotations

import asyncio
import inspect
import logging
import uuid
from typing import Any, Dict, List

import pytest

import tamesdk
from tamesdk import (
    ApprovalTimeoutException,
    AsyncClient,
    Client,
    PolicyViolationException,
    ValidationException,
    enforce_policy,
    log_action,
    with_approval,
)

from .conftest import TameServer, nested


def logs_of(server: TameServer, session_id: str) -> List[Dict[str, Any]]:
    with Client(api_url=server.url) as client:
        return client.get_session_logs(session_id)


def test_bare_decorator_keeps_name_docstring_and_signature(configured: tamesdk.Config) -> None:
    def read_file(path: str, encoding: str = "utf-8") -> str:
        """Read a file."""
        return path

    wrapped = enforce_policy(read_file)
    assert wrapped.__name__ == "read_file" and wrapped.__doc__ == "Read a file."
    assert wrapped.__qualname__ == read_file.__qualname__
    assert inspect.signature(wrapped) == inspect.signature(read_file)
    assert not inspect.iscoroutinefunction(wrapped)


def test_async_function_stays_a_coroutine_function(configured: tamesdk.Config) -> None:
    async def fetch(url: str) -> str:
        """Fetch a URL."""
        return url

    for wrapped in (enforce_policy(fetch), with_approval(fetch), log_action(fetch)):
        assert inspect.iscoroutinefunction(wrapped)
        assert wrapped.__name__ == "fetch" and wrapped.__doc__ == "Fetch a URL."
        assert inspect.signature(wrapped) == inspect.signature(fetch)


def test_arguments_map_to_tool_args_by_name(server: TameServer) -> None:
    session = f"deco-{uuid.uuid4()}"
    tamesdk.configure(api_url=server.url, session_id=session)

    @enforce_policy
    def read_file(path: str, mode: str = "r", *rest: Any, limit: int = 10, **extra: Any) -> str:
        return "ok"

    assert read_file("/tmp/a") == "ok"
    assert read_file("/tmp/b", "rb", 1, 2, limit=3, flag=True) == "ok"
    assert read_file(path="/tmp/c") == "ok"
    args = [e["tool_args"] for e in logs_of(server, session)]
    assert args[0] == {"path": "/tmp/a", "mode": "r", "rest": [], "limit": 10}
    assert args[1] == {"path": "/tmp/b", "mode": "rb", "rest": [1, 2], "limit": 3, "flag": True}
    assert args[2] == {"path": "/tmp/c", "mode": "r", "rest": [], "limit": 10}


def test_self_and_cls_are_left_out(server: TameServer) -> None:
    session = f"deco-{uuid.uuid4()}"
    tamesdk.configure(api_url=server.url, session_id=session)

    class Files:
        @enforce_policy
        def read_file(self, path: str) -> str:
            return f"read {path}"

        @classmethod
        @enforce_policy(tool_name="list_files")
        def listing(cls, path: str) -> str:
            return f"list {path}"

    assert Files().read_file("/tmp/a") == "read /tmp/a"
    assert Files.listing("/tmp") == "list /tmp"
    entries = logs_of(server, session)
    assert [e["tool_args"] for e in entries] == [{"path": "/tmp/a"}, {"path": "/tmp"}]
    assert [e["tool_name"] for e in entries] == ["read_file", "list_files"]


def test_arguments_that_would_share_a_name_are_refused_before_anything_runs(
    server: TameServer,
) -> None:
    # fail_open and no raising on deny: the refusal holds whatever the settings.
    session = f"deco-{uuid.uuid4()}"
    tamesdk.configure(
        api_url=server.url, session_id=session, failure_mode="fail_open", raise_on_deny=False
    )
    opened: List[Any] = []

    @enforce_policy
    def read_file(*path: str, **options: Any) -> str:
        opened.append(path)
        return f"opened {path}"

    @enforce_policy(tool_name="read_file")
    def tool(*args: Any, **kwargs: Any) -> str:
        opened.append(args)
        return f"ran {args}"

    @enforce_policy(tool_name="read_file")
    def load(path: str, /, **options: Any) -> str:
        opened.append(path)
        return f"opened {path}"

    @log_action
    def logged(*path: str, **options: Any) -> None:
        opened.append(path)

    # Before, the policy saw only path="/tmp/ok.txt" (allowed) and /etc/shadow was opened.
    with pytest.raises(ValidationException, match=r"'path' and the parameter \*path"):
        read_file("/etc/shadow", path="/tmp/ok.txt")
    with pytest.raises(ValidationException, match=r"tool_args\['args'\]"):
        tool("/etc/passwd", args="/tmp/x")
    with pytest.raises(ValidationException, match=r"path \(positional-only\)"):
        load("/etc/shadow", path="/tmp/ok.txt")
    with pytest.raises(ValidationException):
        read_file(path="/tmp/ok.txt")  # an empty *path is an argument too
    with pytest.raises(ValidationException):
        logged("/etc/shadow", path="/tmp/ok.txt")
    assert opened == [] and server.decisions(session) == []

    # Without a shared name, the policy sees every argument, and decides on them.
    assert read_file("/etc/shadow", mode="r") is None
    assert load("/etc/shadow", mode="r") is None
    assert load("/tmp/a", mode="r") == "opened /tmp/a"
    entries = logs_of(server, session)
    assert [e["tool_args"] for e in entries] == [
        {"path": ["/etc/shadow"], "mode": "r"},
        {"path": "/etc/shadow", "mode": "r"},
        {"path": "/tmp/a", "mode": "r"},
    ]
    assert [e["policy_decision"] for e in entries] == ["deny", "deny", "allow"]
    assert opened == ["/tmp/a"]


async def test_async_arguments_that_would_share_a_name_are_refused(server: TameServer) -> None:
    session = f"deco-{uuid.uuid4()}"
    tamesdk.configure(api_url=server.url, session_id=session)
    opened: List[Any] = []

    @enforce_policy
    async def read_file(*path: str, **options: Any) -> str:
        opened.append(path)
        return "opened"

    with pytest.raises(ValidationException):
        await read_file("/etc/shadow", path="/tmp/ok.txt")
    assert opened == [] and server.decisions(session) == []


def test_only_a_positional_self_or_cls_is_left_out(server: TameServer) -> None:
    session = f"deco-{uuid.uuid4()}"
    tamesdk.configure(api_url=server.url, session_id=session, raise_on_deny=False)

    # Named self and cls, but not the instance or the class: the policy sees them.
    @enforce_policy(tool_name="read_file")
    def by_keyword(**cls: Any) -> str:
        return "ran"

    @enforce_policy(tool_name="read_file")
    def by_position(*self: Any) -> str:
        return "ran"

    assert by_keyword(path="/etc/shadow") is None  # denied: before, the policy saw no path
    by_position("/etc/shadow")
    entries = logs_of(server, session)
    assert [e["tool_args"] for e in entries] == [
        {"path": "/etc/shadow"},
        {"self": ["/etc/shadow"]},
    ]
    assert entries[0]["policy_rule"] == "deny_system_files"


def test_wrong_call_arguments_fail_before_asking(server: TameServer) -> None:
    session = f"deco-{uuid.uuid4()}"
    tamesdk.configure(api_url=server.url, session_id=session)

    @enforce_policy
    def read_file(path: str) -> str:
        return path

    with pytest.raises(TypeError):
        read_file()  # type: ignore[call-arg]
    assert server.decisions(session) == []


def test_options_tool_name_metadata_and_raise_flags(server: TameServer) -> None:
    session = f"deco-{uuid.uuid4()}"
    tamesdk.configure(api_url=server.url, session_id=session)
    ran: List[str] = []

    @enforce_policy(tool_name="read_file", metadata={"origin": "test"})
    def load(path: str) -> str:
        ran.append(path)
        return path

    @enforce_policy(tool_name="read_file", raise_on_deny=False)
    def load_quietly(path: str) -> str:
        ran.append(path)
        return path

    @enforce_policy(tool_name="send_email", raise_on_approve=False)
    def send(to: str) -> str:
        ran.append(to)
        return to

    assert load("/tmp/x") == "/tmp/x"
    with pytest.raises(PolicyViolationException) as denied:
        load("/etc/passwd")
    assert load_quietly("/etc/passwd") is None
    assert send("a@b") is None
    assert ran == ["/tmp/x"]
    assert denied.value.decision.tool_args == {"path": "/etc/passwd"}
    entries = logs_of(server, session)
    assert entries[0]["metadata"] == {"origin": "test"}
    assert [e["policy_decision"] for e in entries] == ["allow", "deny", "deny", "approve"]


def test_configured_raise_flags_are_the_default(server: TameServer) -> None:
    tamesdk.configure(api_url=server.url, raise_on_deny=False, raise_on_approve=False)

    @enforce_policy
    def delete_file(path: str) -> str:
        return "deleted"

    assert delete_file("/etc/hosts") is None
    assert delete_file("/home/u/x") is None
    assert delete_file("/tmp/x") == "deleted"


def test_result_and_exception_are_reported_with_duration(server: TameServer) -> None:
    session = f"deco-{uuid.uuid4()}"
    tamesdk.configure(api_url=server.url, session_id=session)

    @enforce_policy
    def read_file(path: str) -> Dict[str, Any]:
        if path.endswith("missing"):
            raise FileNotFoundError(path)
        return {"lines": 3}

    assert read_file("/tmp/ok") == {"lines": 3}
    with pytest.raises(FileNotFoundError):
        read_file("/tmp/missing")
    ok, failed = logs_of(server, session)
    assert ok["execution_status"] == "success" and ok["tool_result"] == {"lines": 3}
    assert ok["execution_duration_ms"] >= 0
    assert failed["execution_status"] == "error"
    assert failed["error_message"] == "FileNotFoundError: /tmp/missing"
    assert failed["execution_duration_ms"] >= 0


def test_explicit_client(server: TameServer) -> None:
    with Client(api_url=server.url, session_id=f"deco-{uuid.uuid4()}") as client:

        @enforce_policy(client=client)
        def list_files(path: str) -> List[str]:
            return ["a"]

        assert list_files("/tmp") == ["a"]
        assert client.get_session_logs()[0]["tool_name"] == "list_files"


def test_a_sync_function_refuses_an_async_client(configured: tamesdk.Config) -> None:
    client = AsyncClient()
    with pytest.raises(TypeError, match="not async"):

        @enforce_policy(client=client)
        def list_files(path: str) -> None: ...

    asyncio.run(client.aclose())


async def test_async_decorated_function(server: TameServer) -> None:
    session = f"deco-{uuid.uuid4()}"
    tamesdk.configure(api_url=server.url, session_id=session)

    @enforce_policy
    async def read_file(path: str) -> str:
        await asyncio.sleep(0)
        return f"read {path}"

    # Nobody answers within no time at all: the approval wait runs out at once.
    @with_approval(approval_message="check first", approval_timeout=0)
    async def write_file(path: str, content: str) -> None:
        raise AssertionError("must not run")

    assert await read_file("/tmp/a") == "read /tmp/a"
    with pytest.raises(PolicyViolationException):
        await read_file("/etc/passwd")
    with pytest.raises(ApprovalTimeoutException):
        await write_file("/srv/app.conf", "x")
    entries = logs_of(server, session)
    assert entries[0]["execution_status"] == "success"
    assert entries[2]["metadata"] == {"approval_message": "check first"}


async def test_async_function_with_explicit_clients(server: TameServer) -> None:
    async with AsyncClient(api_url=server.url, session_id=f"deco-{uuid.uuid4()}") as aclient:

        @enforce_policy(client=aclient)
        async def list_files(path: str) -> str:
            return "listed"

        assert await list_files("/tmp") == "listed"
        assert (await aclient.get_session_logs())[0]["execution_status"] == "success"
    with Client(api_url=server.url, session_id=f"deco-{uuid.uuid4()}") as client:

        @enforce_policy(client=client)
        async def search(query: str) -> str:
            return "found"

        assert await search("q") == "found"
        assert client.get_session_logs()[0]["tool_args"] == {"query": "q"}


async def test_sync_and_async_default_clients_share_one_session(server: TameServer) -> None:
    tamesdk.configure(api_url=server.url)

    @enforce_policy
    def list_files(path: str) -> str:
        return "sync"

    @enforce_policy
    async def search(query: str) -> str:
        return "async"

    assert list_files("/tmp") == "sync"
    assert await search("q") == "async"
    sync_session = tamesdk.decorators.default_client().session_id
    async_session = (await tamesdk.decorators.default_async_client()).session_id
    assert sync_session == async_session
    assert [e["tool_name"] for e in logs_of(server, sync_session)] == ["list_files", "search"]


def test_reconfiguring_replaces_the_default_client(server: TameServer, dead_url: str) -> None:
    tamesdk.configure(api_url=server.url)

    @enforce_policy
    def list_files(path: str) -> str:
        return "ok"

    assert list_files("/tmp") == "ok"
    tamesdk.configure(api_url=dead_url, max_retries=0)
    with pytest.raises(tamesdk.ConnectionException):
        list_files("/tmp")


def test_with_approval_ignores_raise_on_approve_and_sends_the_message(
    server: TameServer,
) -> None:
    session = f"deco-{uuid.uuid4()}"
    tamesdk.configure(
        api_url=server.url, session_id=session, raise_on_approve=False, approval_timeout=0
    )
    ran: List[str] = []

    # An approve is waited for (here: not at all), never skipped quietly.
    @with_approval(approval_message="Deploys change production")
    def deploy(version: str) -> None:
        ran.append(version)

    @with_approval
    def write_file(path: str) -> str:
        ran.append(path)
        return "written"

    with pytest.raises(ApprovalTimeoutException) as info:
        deploy("v2")
    assert write_file("/tmp/scratch") == "written"
    assert ran == ["/tmp/scratch"]
    assert info.value.decision.rule_name == "approve_changes"
    entries = logs_of(server, session)
    assert entries[0]["metadata"] == {"approval_message": "Deploys change production"}


def test_log_action_logs_calls_and_outcomes_without_the_server(
    caplog: pytest.LogCaptureFixture, dead_url: str
) -> None:
    tamesdk.configure(api_url=dead_url, max_retries=0)

    @log_action(level="INFO")
    def query_database(sql: str) -> List[int]:
        return [1, 2]

    @log_action(level=logging.WARNING, tool_name="db_write")
    def write(sql: str) -> None:
        raise ValueError("read-only")

    with caplog.at_level(logging.INFO, logger="tamesdk.actions"):
        assert query_database("select 1") == [1, 2]
        with pytest.raises(ValueError):
            write("delete")
    called, done, write_called, write_failed = caplog.records
    assert called.levelno == logging.INFO and "query_database called" in called.getMessage()
    assert called.tool_args == {"sql": "select 1"}  # type: ignore[attr-defined]
    assert done.status == "success" and done.execution_time_ms >= 0  # type: ignore[attr-defined]
    assert write_called.levelno == logging.WARNING and write_called.tool_name == "db_write"  # type: ignore[attr-defined]
    assert write_failed.status == "error"  # type: ignore[attr-defined]
    assert write_failed.error == "ValueError: read-only"  # type: ignore[attr-defined]


async def test_log_action_on_async_functions_and_a_given_logger(
    caplog: pytest.LogCaptureFixture,
) -> None:
    logger = logging.getLogger("my.app")

    @log_action(logger=logger)
    async def transform(data: Dict[str, int]) -> int:
        return sum(data.values())

    with caplog.at_level(logging.INFO, logger="my.app"):
        assert await transform({"a": 1, "b": 2}) == 3
    assert [r.name for r in caplog.records] == ["my.app", "my.app"]
    assert caplog.records[1].status == "success"  # type: ignore[attr-defined]


def test_log_action_still_runs_a_call_whose_arguments_json_cannot_show(
    caplog: pytest.LogCaptureFixture,
) -> None:
    @log_action
    def transform(data: Dict[str, Any]) -> str:
        return "done"

    with caplog.at_level(logging.INFO, logger="tamesdk.actions"):
        assert transform(nested(100_000)) == "done"
    called, done = caplog.records
    assert "transform called with arguments JSON cannot show (RecursionError" in called.getMessage()
    assert done.status == "success"  # type: ignore[attr-defined]


def test_log_action_refuses_an_unknown_level() -> None:
    with pytest.raises(ValueError, match="unknown logging level"):
        log_action(level="LOUD")
