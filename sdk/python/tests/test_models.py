"""The models as the server fills them, and how they print."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timezone
from typing import Any, Dict

from tamesdk import (
    ActionType,
    Approval,
    ApprovalStatus,
    Client,
    EnforcementDecision,
    PolicyInfo,
    ToolResult,
)
from tamesdk.models import parse_timestamp

from .conftest import TameServer


def test_decision_from_the_server_and_to_dict(server: TameServer) -> None:
    with Client(api_url=server.url, session_id=f"models-{uuid.uuid4()}") as client:
        decision = client.enforce("read_file", {"path": "/tmp/a"}, metadata={"k": "v"})
    assert decision.timestamp.tzinfo is not None
    data = decision.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["decision"] == "allow" and data["tool_args"] == {"path": "/tmp/a"}
    assert data["log_id"] == decision.log_id and data["local"] is False
    assert data["timestamp"].endswith("+00:00")


def test_action_type_values() -> None:
    assert [a.value for a in ActionType] == ["allow", "deny", "approve"]
    assert ActionType("deny") is ActionType.DENY and ActionType.DENY == "deny"


def test_local_decision() -> None:
    local = EnforcementDecision.local_allow("s", "t", {"a": 1}, "why")
    assert local.is_allowed and local.local and local.log_id == "" and local.reason == "why"


def test_timestamps() -> None:
    parsed = parse_timestamp("2026-11-23T21:01:13.123456+00:00")
    assert parsed is not None and parsed.tzinfo == timezone.utc and parsed.microsecond == 123456
    assert parse_timestamp("2026-11-23T21:01:13Z") == parsed.replace(microsecond=0)
    assert parse_timestamp("yesterday") is None and parse_timestamp(None) is None


def test_policy_info_and_tool_result() -> None:
    info = PolicyInfo.from_response({"version": "2", "rules_count": 1, "hash": "h", "rules": []})
    assert info.active and info.last_updated is None and info.to_dict()["version"] == "2"
    assert ToolResult("success").to_dict() == {"status": "success"}
    assert ToolResult("error", error="x", execution_time_ms=1.0, cost=0.5).to_dict() == {
        "status": "error",
        "error": "x",
        "execution_time_ms": 1.0,
        "cost": 0.5,
    }


def test_an_object_with_an_async_call_is_an_async_executor(server: TameServer) -> None:
    class Tool:
        async def __call__(self, tool_name: str, args: Dict[str, Any]) -> str:
            return "called"

    with Client(api_url=server.url) as client:
        pending = client.execute_tool("read_file", {"path": "/tmp/a"}, executor=Tool())
        assert asyncio.run(pending) == "called"


def test_approval_from_the_server_and_to_dict(server: TameServer) -> None:
    with Client(api_url=server.url, session_id=f"models-{uuid.uuid4()}") as client:
        decision = client.enforce("send_email", {"to": "a@example.com"})
        assert decision.approval_id
        pending = client.get_approval(decision.approval_id)
        approved = client.approve(decision.approval_id, comment="ok")
    assert pending.status is ApprovalStatus.PENDING and pending.is_pending
    assert not (pending.is_approved or pending.is_denied or pending.is_used)
    assert pending.tool_args == {"to": "a@example.com"} and pending.log_id == decision.log_id
    assert pending.created_at == decision.timestamp and pending.expires_at is not None
    assert [h["kind"] for h in pending.history] == ["decision"]
    assert approved.is_approved and approved.resolved_at is not None and approved.comment == "ok"
    assert approved.usable and not pending.usable
    data = approved.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["status"] == "approved" and data["id"] == decision.approval_id
    assert Approval.from_response(data) == approved
    # The decision that asked, rebuilt from the approval.
    asked = pending.to_decision()
    assert asked.requires_approval and asked.approval_id == decision.approval_id
    for name in ("session_id", "log_id", "rule_name", "reason", "tool_name", "tool_args"):
        assert getattr(asked, name) == getattr(decision, name)


def test_approval_status_values() -> None:
    assert [s.value for s in ApprovalStatus] == ["pending", "approved", "denied", "expired"]
    expired = Approval.from_response(
        {"id": "a", "status": "expired", "session_id": "s", "tool_name": "t", "log_id": "l"}
    )
    assert expired.is_denied and not expired.is_approved and expired.tool_args == {}
