"""What happens without an answer from the server: fail_closed (the
default) raises and runs nothing, fail_open runs the call with a warning;
and bypass mode, which never asks the server at all, loudly."""

from __future__ import annotations

import logging
import uuid
from typing import List

import pytest

import tamesdk
from tamesdk import AsyncClient, Client, ConnectionException, enforce_policy

from .conftest import TameServer, nested, watch


def test_fail_closed_is_the_default(dead_url: str) -> None:
    tamesdk.configure(api_url=dead_url, max_retries=0)
    assert tamesdk.get_config().failure_mode == "fail_closed"
    ran: List[str] = []

    @enforce_policy
    def delete_file(path: str) -> None:
        ran.append(path)

    with pytest.raises(ConnectionException):
        delete_file("/tmp/x")
    assert ran == []


def test_fail_closed_with_no_answer_in_time(silent_url: str) -> None:
    tamesdk.configure(api_url=silent_url, timeout=0.2)
    ran: List[str] = []

    @enforce_policy
    def delete_file(path: str) -> None:
        ran.append(path)

    with pytest.raises(ConnectionException):
        delete_file("/tmp/x")
    assert ran == []


async def test_fail_closed_async(dead_url: str) -> None:
    tamesdk.configure(api_url=dead_url, max_retries=0)
    ran: List[str] = []

    @enforce_policy
    async def delete_file(path: str) -> None:
        ran.append(path)

    with pytest.raises(ConnectionException):
        await delete_file("/tmp/x")
    assert ran == []


def test_fail_open_runs_the_call_with_a_warning(
    dead_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    tamesdk.configure(api_url=dead_url, max_retries=0, failure_mode="fail_open")

    @enforce_policy
    def read_file(path: str) -> str:
        return "contents"

    with caplog.at_level(logging.WARNING, logger="tamesdk"):
        assert read_file("/etc/passwd") == "contents"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("fail_open" in w and "read_file allowed without a decision" in w for w in warnings)


def test_fail_open_decision_is_local(dead_url: str) -> None:
    with Client(api_url=dead_url, max_retries=0, failure_mode="fail_open") as client:
        decision = client.enforce("delete_file", {"path": "/x"})
        assert client.execute_tool("delete_file", {}, executor=lambda t, a: "ran") == "ran"
    assert decision.is_allowed and decision.local and decision.log_id == ""
    assert decision.rule_name is None and decision.reason.startswith("fail_open")


async def test_fail_open_async_with_no_answer_in_time(
    silent_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with AsyncClient(api_url=silent_url, timeout=0.2, failure_mode="fail_open") as client:
        traffic = watch(client)

        @enforce_policy(client=client)
        async def read_file(path: str) -> str:
            return "contents"

        with caplog.at_level(logging.WARNING, logger="tamesdk"):
            assert await read_file("/tmp/a") == "contents"
    # One decision asked for, not retried; no result reported for a local allow.
    assert traffic.requests == ["POST /api/v1/enforce"] and traffic.delays == []
    assert any("fail_open" in r.getMessage() for r in caplog.records)


def test_fail_open_still_enforces_decisions(server: TameServer) -> None:
    tamesdk.configure(api_url=server.url, failure_mode="fail_open")

    @enforce_policy
    def read_file(path: str) -> str:
        return "contents"

    with pytest.raises(tamesdk.PolicyViolationException):
        read_file("/etc/passwd")


def test_fail_open_does_not_cover_refusals(auth_server: TameServer) -> None:
    # A 401 is an answer, not an outage: fail_open does not let the call through.
    with Client(api_url=auth_server.url, failure_mode="fail_open") as client:
        with pytest.raises(tamesdk.AuthenticationException):
            client.execute_tool("read_file", {"path": "/tmp/a"}, executor=lambda t, a: "ran")


def test_a_result_that_cannot_be_reported_is_a_warning(
    server: TameServer, caplog: pytest.LogCaptureFixture
) -> None:
    # The tool returns NaN, which is not JSON: the server refuses the report (400).
    with Client(api_url=server.url, session_id=f"report-{uuid.uuid4()}") as client:
        with caplog.at_level(logging.WARNING, logger="tamesdk"):
            result = client.execute_tool(
                "read_file", {"path": "/tmp/a"}, executor=lambda t, a: float("nan")
            )
    assert result != result  # NaN: the call's own result is returned untouched
    assert any("could not report the result" in r.getMessage() for r in caplog.records)


def test_a_result_json_cannot_hold_is_returned_and_reported_as_text(server: TameServer) -> None:
    deep = nested(100_000)
    with Client(api_url=server.url, session_id=f"report-{uuid.uuid4()}") as client:
        result = client.execute_tool("read_file", {"path": "/tmp/a"}, executor=lambda t, a: deep)
        (entry,) = client.get_session_logs()
    assert result is deep  # the tool has run: its result is the caller's, whatever it is
    assert entry["execution_status"] == "success"
    assert entry["tool_result"] == "<dict that cannot be shown: RecursionError>"


def test_bypass_mode_from_the_environment_skips_the_server_loudly(
    dead_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("TAME_BYPASS_MODE", "true")
    monkeypatch.setenv("TAME_API_URL", dead_url)

    @enforce_policy
    def read_file(path: str) -> str:
        return "contents"

    with caplog.at_level(logging.WARNING, logger="tamesdk"):
        assert read_file("/etc/passwd") == "contents"
        with Client() as client:
            traffic = watch(client)
            decision = client.enforce("delete_file", {"path": "/"})
            reported = client.update_result(decision.session_id, "log", {"status": "success"})
            ran = client.execute_tool("delete_file", {}, executor=lambda t, a: "ran")
    assert traffic.requests == []  # nothing was sent to the (dead) server
    assert decision.is_allowed and decision.local and decision.reason.startswith("bypass mode")
    assert reported == {"status": "bypassed", "log_id": "log"} and ran == "ran"
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("BYPASS MODE is on" in m for m in messages)
    assert any("read_file allowed without asking the policy" in m for m in messages)


async def test_bypass_mode_async(dead_url: str, caplog: pytest.LogCaptureFixture) -> None:
    tamesdk.configure(api_url=dead_url, bypass_mode=True)

    @enforce_policy
    async def delete_file(path: str) -> str:
        return "deleted"

    with caplog.at_level(logging.WARNING, logger="tamesdk"):
        assert await delete_file("/etc/passwd") == "deleted"
        async with AsyncClient() as client:
            decision = await client.enforce("x")
            assert (await client.update_result("s", "l", {}))["status"] == "bypassed"
    assert decision.local and decision.is_allowed
    assert any("BYPASS MODE" in r.getMessage() for r in caplog.records)
