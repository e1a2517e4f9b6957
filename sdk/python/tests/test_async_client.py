"""AsyncClient against the real server: the same methods as Client, as
coroutines, with sync and async executors and concurrent calls."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, Dict, List

import pytest

from tamesdk import (
    ApprovalRequiredException,
    AsyncClient,
    EnforcementDecision,
    NotFoundException,
    PolicyInfo,
    PolicyViolationException,
    ToolResult,
)

from .conftest import DEFAULT_POLICY, TameServer
from .test_client import connections_to


def sid() -> str:
    return f"async-{uuid.uuid4()}"


async def test_enforce_and_reads(server: TameServer) -> None:
    async with AsyncClient(api_url=server.url, session_id=sid(), agent_id="async-agent") as client:
        allow = await client.enforce("read_file", {"path": "/tmp/a"})
        deny = await client.enforce("read_file", {"path": "/etc/passwd"})
        approve = await client.enforce("tool_name", {"arg": "value"}, metadata={"sensitive": True})
        await client.update_result(allow.session_id, allow.log_id, ToolResult("success", "ok"))
        await client.update_result(deny.session_id, deny.log_id, {"status": "blocked"})
        logs = await client.get_session_logs()
        same = await client.get_session_logs(client.session_id)
        summary = await client.get_session_summary()
        listing = await client.list_sessions(agent_id="async-agent", page_size=100)
        with pytest.raises(NotFoundException):
            await client.get_session_summary("no-such-session")
    assert allow.is_allowed and deny.is_denied and approve.requires_approval
    assert logs == same and [e["policy_decision"] for e in logs] == ["allow", "deny", "approve"]
    assert logs[0]["execution_status"] == "success" and logs[1]["execution_status"] == "blocked"
    assert summary["total_calls"] == 3 and summary["approved_calls"] == 1
    assert client.session_id in [s["session_id"] for s in listing["sessions"]]


async def test_policy_methods_and_health(server: TameServer) -> None:
    async with AsyncClient(api_url=server.url) as client:
        info = await client.get_policy_info()
        tested = await client.test_policy("read_file", {"path": "/etc/hosts"})
        valid = await client.validate_policy(DEFAULT_POLICY.read_text())
        health = await client.health()
        status = await client.get_status()
    assert isinstance(info, PolicyInfo) and info.rules_count == 8
    assert tested["decision"] == "deny" and tested["rule_name"] == "deny_system_files"
    assert valid["valid"] is True
    assert health["status"] == "ok" and status["auth"] == "open"


async def test_execute_tool_with_async_and_sync_executors(server: TameServer) -> None:
    async def fetch(tool_name: str, args: Dict[str, Any]) -> Dict[str, Any]:
        await asyncio.sleep(0)
        return {"fetched": args["endpoint"]}

    def compute(tool_name: str, args: Dict[str, Any]) -> int:
        return 42

    async with AsyncClient(api_url=server.url, session_id=sid()) as client:
        fetched = await client.execute_tool("api_call", {"endpoint": "/data"}, executor=fetch)
        computed = await client.execute_tool("get_answer", {}, executor=compute)
        decision = await client.execute_tool("list_files", {"path": "/tmp"})
        logs = await client.get_session_logs()
    assert fetched == {"fetched": "/data"} and computed == 42
    assert isinstance(decision, EnforcementDecision) and decision.is_allowed
    assert [e["execution_status"] for e in logs] == ["success", "success", None]
    assert logs[1]["tool_result"] == 42


async def test_execute_tool_raises_on_deny_and_approve_and_reports_errors(
    server: TameServer,
) -> None:
    ran: List[str] = []

    async def executor(tool_name: str, args: Dict[str, Any]) -> None:
        ran.append(tool_name)
        raise RuntimeError("tool broke")

    async with AsyncClient(api_url=server.url, session_id=sid()) as client:
        with pytest.raises(PolicyViolationException) as denied:
            await client.execute_tool("read_file", {"path": "/proc/1"}, executor=executor)
        with pytest.raises(ApprovalRequiredException) as approval:
            await client.execute_tool("deploy_model", {"version": "2"}, executor=executor)
        skipped = await client.execute_tool(
            "deploy_model", {}, executor=executor, raise_on_approve=False
        )
        with pytest.raises(RuntimeError):
            await client.execute_tool("read_file", {"path": "/tmp/x"}, executor=executor)
        logs = await client.get_session_logs()
    assert denied.value.decision.rule_name == "deny_system_files"
    assert approval.value.decision.rule_name == "approve_changes"
    assert skipped is None and ran == ["read_file"]
    assert logs[-1]["execution_status"] == "error"
    assert logs[-1]["error_message"] == "RuntimeError: tool broke"


async def test_concurrent_decisions_in_one_session(server: TameServer) -> None:
    async with AsyncClient(api_url=server.url, session_id=sid()) as client:
        decisions = await asyncio.gather(
            *(client.enforce("read_file", {"path": f"/tmp/{i}"}) for i in range(20))
        )
        summary = await client.get_session_summary()
    assert all(d.is_allowed for d in decisions)
    assert len({d.log_id for d in decisions}) == 20
    assert summary["total_calls"] == 20


async def test_one_keep_alive_connection_per_async_client(server: TameServer) -> None:
    port = int(server.url.rsplit(":", 1)[1])
    async with AsyncClient(api_url=server.url) as client:
        for _ in range(10):
            await client.enforce("read_file", {"path": "/tmp/a"})
        assert connections_to(port) == 1
