"""The blocking Client against the real server: every method, sessions,
metadata, result reports, and one keep-alive connection per client."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any, Dict, List

import pytest

import tamesdk
from tamesdk import (
    ActionType,
    ApprovalRequiredException,
    Client,
    EnforcementDecision,
    NotFoundException,
    PolicyInfo,
    PolicyViolationException,
    ToolResult,
)

from .conftest import DEFAULT_POLICY, TameServer


def sid() -> str:
    return f"test-{uuid.uuid4()}"


def test_enforce_returns_each_decision_without_raising(server: TameServer) -> None:
    session = sid()
    with Client(api_url=server.url, session_id=session, agent_id="a-1", user_id="u-1") as client:
        allow = client.enforce("read_file", {"path": "/tmp/a.txt"})
        deny = client.enforce("read_file", {"path": "/etc/passwd"})
        approve = client.enforce("delete_file", {"path": "/home/u/doc.txt"})
    assert isinstance(allow, EnforcementDecision)
    assert allow.action is ActionType.ALLOW and allow.is_allowed
    assert not allow.is_denied and not allow.requires_approval
    assert allow.rule_name == "allow_temp_files"
    assert allow.session_id == session and allow.log_id and allow.policy_version == "1.1"
    assert allow.timestamp.tzinfo is not None and allow.policy_hash
    assert allow.tool_name == "read_file" and allow.tool_args == {"path": "/tmp/a.txt"}
    assert not allow.local
    assert deny.is_denied and deny.reason == "System files are not accessible"
    assert approve.requires_approval and approve.rule_name == "approve_changes"
    assert approve.approval_id and allow.approval_id is None  # the pending approval
    rows = server.decisions(session)
    assert [r["decision"] for r in rows] == ["allow", "deny", "approve"]
    assert rows[0]["agent_id"] == "a-1" and rows[0]["user_id"] == "u-1"


def test_client_session_is_kept_across_calls_and_can_be_overridden(server: TameServer) -> None:
    with Client(api_url=server.url) as client:
        first = client.enforce("list_files", {"path": "/tmp"})
        second = client.enforce("list_files", {"path": "/tmp"})
        other = client.enforce("list_files", {"path": "/tmp"}, session_id=sid())
    assert first.session_id == second.session_id == client.session_id
    assert other.session_id != client.session_id
    assert len(server.decisions(client.session_id)) == 2


def test_metadata_of_client_and_call_are_merged(server: TameServer) -> None:
    with Client(api_url=server.url, session_id=sid(), metadata={"team": "ops"}) as client:
        client.enforce("read_file", {"path": "/tmp/x"}, metadata={"ticket": 7})
        logs = client.get_session_logs()
    assert logs[0]["metadata"] == {"team": "ops", "ticket": 7}


def test_metadata_reaches_the_policy(server: TameServer) -> None:
    with Client(api_url=server.url, session_id=sid()) as client:
        decision = client.enforce("read_file", {"path": "/tmp/x"}, metadata={"sensitive": True})
    assert decision.requires_approval and decision.rule_name == "approve_sensitive"


def test_update_result_accepts_tool_result_mapping_or_value(server: TameServer) -> None:
    with Client(api_url=server.url, session_id=sid()) as client:
        d1 = client.enforce("read_file", {"path": "/tmp/1"})
        d2 = client.enforce("read_file", {"path": "/tmp/2"})
        d3 = client.enforce("read_file", {"path": "/tmp/3"})
        r1 = client.update_result(
            d1.session_id,
            d1.log_id,
            ToolResult(status="success", result="3 lines", execution_time_ms=1.5, cost=0.25),
        )
        client.update_result(d2.session_id, d2.log_id, {"status": "error", "error": "boom"})
        client.update_result(d3.session_id, d3.log_id, "plain value")
        logs = client.get_session_logs()
        summary = client.get_session_summary()
    assert r1 == {"status": "updated", "log_id": d1.log_id}
    assert logs[0]["execution_status"] == "success" and logs[0]["tool_result"] == "3 lines"
    assert logs[0]["execution_duration_ms"] == 1.5
    assert logs[1]["execution_status"] == "error" and logs[1]["error_message"] == "boom"
    assert logs[2]["tool_result"] == "plain value"
    assert summary["estimated_cost"] == pytest.approx(0.25)
    assert summary["total_calls"] == 3 and summary["allowed_calls"] == 3
    assert summary["tool_counts"] == {"read_file": 3}


def test_update_result_of_unknown_log_is_not_found(server: TameServer) -> None:
    with Client(api_url=server.url, session_id=sid()) as client:
        client.enforce("read_file", {"path": "/tmp/1"})
        with pytest.raises(NotFoundException) as info:
            client.update_result(client.session_id, "no-such-log", {"status": "success"})
    assert info.value.status_code == 404 and info.value.code == "not_found"


def test_session_reads(server: TameServer) -> None:
    with Client(api_url=server.url, session_id=sid(), agent_id=f"agent-{uuid.uuid4()}") as client:
        client.enforce("read_file", {"path": "/tmp/1"})
        client.enforce("read_file", {"path": "/etc/shadow"})
        logs = client.get_session_logs()
        same = client.get_session_logs(client.session_id)
        summary = client.get_session_summary(client.session_id)
        listing = client.list_sessions(page=1, page_size=10, agent_id=client.config.agent_id)
        with pytest.raises(NotFoundException):
            client.get_session_logs("never-seen-session")
    assert logs == same
    assert [e["policy_decision"] for e in logs] == ["allow", "deny"]
    assert {"id", "tool_name", "tool_args", "policy_rule", "reason", "timestamp"} <= set(logs[0])
    assert summary["denied_calls"] == 1 and summary["session_id"] == client.session_id
    assert listing["total_count"] == 1 and listing["page_size"] == 10
    assert listing["sessions"][0]["session_id"] == client.session_id


def test_policy_info_test_and_validate(server: TameServer) -> None:
    with Client(api_url=server.url) as client:
        info = client.get_policy_info()
        tested = client.test_policy("delete_file", {"path": "/home/u/x"})
        valid = client.validate_policy(DEFAULT_POLICY.read_text())
        invalid = client.validate_policy(
            "version: '1'\nrules:\n  - name: r\n    condition: tool_args.path.startwith('/')\n"
            "    action: deny\n"
        )
    assert isinstance(info, PolicyInfo)
    assert info.version == "1.1" and info.rules_count == 8 and info.active
    assert [r["name"] for r in info.rules][:2] == ["session_action_limit", "deny_system_files"]
    assert info.default_action == "deny" and info.last_updated is not None
    assert info.to_dict()["hash"] == info.hash
    assert tested["decision"] == "approve" and tested["rule_name"] == "approve_changes"
    assert [t["rule"] for t in tested["trace"]][-1] == "approve_changes"
    assert valid["valid"] is True and valid["rules_count"] == 8
    assert invalid["valid"] is False and "startwith" in invalid["errors"][0]["message"]


def test_test_policy_records_nothing(server: TameServer) -> None:
    with Client(api_url=server.url, session_id=sid()) as client:
        client.test_policy("read_file", {"path": "/tmp/a"})
    assert server.decisions(client.session_id) == []


def test_health_and_status(server: TameServer) -> None:
    with Client(api_url=server.url) as client:
        assert client.health()["status"] == "ok"
        status = client.get_status()
    assert status["auth"] == "open" and status["storage"] == "sqlite"
    assert status["policy"]["version"] == "1.1"


def test_execute_tool_runs_the_executor_and_reports(server: TameServer) -> None:
    calls: List[Any] = []

    def executor(tool_name: str, args: Dict[str, Any]) -> str:
        calls.append((tool_name, args))
        return "contents"

    with Client(api_url=server.url, session_id=sid()) as client:
        result = client.execute_tool("read_file", {"path": "/tmp/a"}, executor=executor)
        logs = client.get_session_logs()
    assert result == "contents"
    assert calls == [("read_file", {"path": "/tmp/a"})]
    assert logs[0]["execution_status"] == "success" and logs[0]["tool_result"] == "contents"
    assert isinstance(logs[0]["execution_duration_ms"], (int, float))


def test_execute_tool_reports_the_executor_exception(server: TameServer) -> None:
    def executor(tool_name: str, args: Dict[str, Any]) -> None:
        raise FileNotFoundError("no such file")

    with Client(api_url=server.url, session_id=sid()) as client:
        with pytest.raises(FileNotFoundError):
            client.execute_tool("read_file", {"path": "/tmp/missing"}, executor=executor)
        logs = client.get_session_logs()
    assert logs[0]["execution_status"] == "error"
    assert logs[0]["error_message"] == "FileNotFoundError: no such file"


def test_execute_tool_deny_and_approve_raise_and_do_not_run(server: TameServer) -> None:
    ran: List[str] = []
    with Client(api_url=server.url, session_id=sid()) as client:
        with pytest.raises(PolicyViolationException) as denied:
            client.execute_tool(
                "read_file", {"path": "/etc/passwd"}, executor=lambda t, a: ran.append(t)
            )
        with pytest.raises(ApprovalRequiredException) as approval:
            client.execute_tool("send_email", {"to": "x@y"}, executor=lambda t, a: ran.append(t))
        # With raising turned off the tool still does not run; the call returns None.
        quiet = client.execute_tool(
            "read_file",
            {"path": "/etc/passwd"},
            executor=lambda t, a: ran.append(t),
            raise_on_deny=False,
        )
        quiet_approve = client.execute_tool(
            "send_email", {}, executor=lambda t, a: ran.append(t), raise_on_approve=False
        )
    assert ran == [] and quiet is None and quiet_approve is None
    assert (
        denied.value.decision.is_denied and denied.value.decision.rule_name == "deny_system_files"
    )
    assert approval.value.decision.requires_approval
    # One decision per call: nothing was sent twice.
    assert len(server.decisions(client.session_id)) == 4


def test_execute_tool_without_executor_returns_the_decision(server: TameServer) -> None:
    with Client(api_url=server.url) as client:
        decision = client.execute_tool("log_error", {"message": "x"})
    assert isinstance(decision, EnforcementDecision) and decision.is_allowed


def test_execute_tool_with_an_async_executor_returns_an_awaitable(server: TameServer) -> None:
    async def executor(tool_name: str, args: Dict[str, Any]) -> Dict[str, Any]:
        await asyncio.sleep(0)
        return {"tool": tool_name, **args}

    with Client(api_url=server.url, session_id=sid()) as client:
        result = asyncio.run(
            client.execute_tool("read_file", {"path": "/tmp/a"}, executor=executor)
        )
        assert result == {"tool": "read_file", "path": "/tmp/a"}
        with pytest.raises(PolicyViolationException):
            asyncio.run(client.execute_tool("read_file", {"path": "/etc/x"}, executor=executor))
        logs = client.get_session_logs()
    assert logs[0]["tool_result"] == {"tool": "read_file", "path": "/tmp/a"}


def test_large_results_are_shortened(server: TameServer) -> None:
    with Client(api_url=server.url, session_id=sid()) as client:
        client.execute_tool("read_file", {"path": "/tmp/big"}, executor=lambda t, a: "x" * 100_000)
        client.execute_tool("read_file", {"path": "/tmp/obj"}, executor=lambda t, a: object())
        logs = client.get_session_logs()
    assert len(logs[0]["tool_result"]) < 5000 and logs[0]["tool_result"].endswith("…")
    assert logs[1]["tool_result"].startswith("<object object")


def test_arguments_that_are_not_json_are_sent_as_text(server: TameServer) -> None:
    with Client(api_url=server.url, session_id=sid()) as client:
        decision = client.enforce("read_file", {"path": Path("/tmp/p")})
        logs = client.get_session_logs()
    assert decision.rule_name == "allow_temp_files"
    assert logs[0]["tool_args"] == {"path": "/tmp/p"}


def test_one_keep_alive_connection_per_client(server: TameServer) -> None:
    port = server.url.rsplit(":", 1)[1]
    with Client(api_url=server.url) as client:
        for _ in range(10):
            client.enforce("read_file", {"path": "/tmp/a"})
        assert connections_to(int(port)) == 1


def connections_to(port: int) -> int:
    """Established TCP connections whose local port is the server's: one per client connection."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == "01":
                count += 1
    return count


def test_client_arguments_override_the_global_configuration(server: TameServer) -> None:
    tamesdk.configure(api_url=server.url, agent_id="global-agent", timeout=5.0)
    with Client(agent_id="mine", metadata={"k": 1}) as client:
        assert client.config.api_url == server.url
        assert client.config.agent_id == "mine"
        assert client.config.timeout == 5.0
        assert client.config.metadata == {"k": 1}
    with Client(config=tamesdk.Config(api_url=server.url, max_retries=0)) as client:
        assert client.config.max_retries == 0 and client.config.agent_id is None
