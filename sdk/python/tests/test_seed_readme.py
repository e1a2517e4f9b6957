"""Every code example of the first SDK's README (``seed_examples``), run
against our server with the shipped default policy, checking what its
comments claim.

The examples run as printed. What is adapted, and only that:
- ``http://localhost:8000`` becomes the test server's address where the
  example talks to the server;
- names an example uses but never defines (``os``, ``make_api_call``,
  ``execute_sql``, ``delete_user``, ``dangerous_operation``, ``logger``,
  ``safe_fallback``, ``queue_for_approval``, ``process``, ``modify_system``,
  ``transform``, ``self.mcp_session``) are given to it;
- ``openai`` and ``mcp`` are tiny stand-in modules with the same call shape,
  put in ``sys.modules`` for the test rather than installed: that is giving
  the example helpers it does not define, not changing the example;
- the API reference's fragments assume ``import tamesdk`` (they are given
  the module), and its ``AsyncClient`` fragment uses ``await`` at top
  level, so it runs inside a coroutine.

Not run, because they are not examples of the SDK: ``pip install tamesdk``
(the package is installed from this folder), the Testing block (pytest-cov,
mypy, black, isort: the old project's tooling; our README gives our test
command), and the Contributing blocks (the old project's repository)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import re
import subprocess
import sys
import types
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import pytest
import yaml

import tamesdk
from tamesdk import (
    ApprovalDeniedException,
    ApprovalRequiredException,
    Client,
    PolicyViolationException,
)

from . import seed_examples as seed
from .conftest import REPO_ROOT, TAMESDK_CLI, TameServer, pending_approval

SEED = REPO_ROOT.parent / "shared" / "seed" / "000_ba84403bd5f9d494.txt"
SEED_URL = "http://localhost:8000"


def run(
    code: str, namespace: Optional[Dict[str, Any]] = None, url: Optional[str] = None
) -> Dict[str, Any]:
    """Execute an example; with ``url``, it talks to that server instead of localhost:8000."""
    if url is not None:
        code = code.replace(SEED_URL, url)
    scope: Dict[str, Any] = {"__name__": "seed_example"}
    scope.update(namespace or {})
    exec(compile(code, "<seed example>", "exec"), scope)
    return scope


def logs(server: TameServer, session_id: str) -> List[Dict[str, Any]]:
    with Client(api_url=server.url) as client:
        return client.get_session_logs(session_id)


def test_examples_are_verbatim() -> None:
    if not SEED.is_file():
        pytest.skip(f"the seed README is not at {SEED}")
    text = "\n".join(line.rstrip() for line in SEED.read_text().splitlines())
    blocks = [v for k, v in vars(seed).items() if k.isupper()]
    assert len(blocks) == 28
    for block in blocks:
        assert block in text


# ------------------------------------------------------------- Quick Start


def test_basic_usage(server: TameServer) -> None:
    safe = Path("/tmp/safe_file.txt")
    created = not safe.exists()
    if created:
        safe.write_text("safe contents\n")
    try:
        expected = safe.read_text()
        with pytest.raises(PolicyViolationException) as blocked:
            run(seed.BASIC_USAGE, url=server.url)
    finally:
        if created:
            safe.unlink()
    # ✅ Allowed: the first call read the file; ❌ Blocked by policy: the second raised.
    assert blocked.value.decision.rule_name == "deny_system_files"
    assert blocked.value.decision.tool_args == {"path": "/etc/passwd"}
    session = blocked.value.decision.session_id
    entries = logs(server, session)
    assert [e["policy_decision"] for e in entries] == ["allow", "deny"]
    assert entries[0]["execution_status"] == "success" and entries[0]["tool_result"] == expected


class RecordingOs:
    """Stands in for the ``os`` the example uses without importing."""

    def __init__(self) -> None:
        self.removed: List[str] = []

    def remove(self, path: str) -> None:
        self.removed.append(path)


def test_context_manager_usage(
    server: TameServer, policy_server: Callable[[str], TameServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    # With the default policy, deleting outside /tmp needs approval: nothing is removed.
    monkeypatch.setenv("TAME_API_URL", server.url)
    fake_os = RecordingOs()
    scope = run(seed.CONTEXT_MANAGER, {"os": fake_os})
    decision = scope["decision"]
    assert decision.requires_approval and not decision.is_allowed
    assert fake_os.removed == []
    assert [e["policy_decision"] for e in logs(server, decision.session_id)] == ["approve"]
    # Under a policy that allows it, the file is removed and the result recorded.
    permissive = policy_server('version: "allow-all"\ndefault_action: allow\nrules: []\n')
    monkeypatch.setenv("TAME_API_URL", permissive.url)
    tamesdk.configure()
    fake_os = RecordingOs()
    scope = run(seed.CONTEXT_MANAGER, {"os": fake_os})
    assert scope["decision"].is_allowed and fake_os.removed == ["/important/file.txt"]
    entry = logs(permissive, scope["decision"].session_id)[0]
    assert entry["execution_status"] == "deleted"


def test_async_support(server: TameServer, monkeypatch: pytest.MonkeyPatch) -> None:
    session = f"async-{uuid.uuid4()}"
    monkeypatch.setenv("TAME_API_URL", server.url)
    monkeypatch.setenv("TAME_SESSION_ID", session)
    calls: List[Any] = []

    async def make_api_call(tool_name: str, args: Dict[str, Any]) -> Dict[str, Any]:
        calls.append((tool_name, args))
        await asyncio.sleep(0)
        return {"status": 200, "data": [1, 2, 3]}

    run(seed.ASYNC_SUPPORT, {"make_api_call": make_api_call})
    assert calls == [("api_call", {"endpoint": "https://api.example.com/data"})]
    (entry,) = logs(server, session)
    assert entry["policy_decision"] == "allow" and entry["execution_status"] == "success"
    assert entry["tool_result"] == {"status": 200, "data": [1, 2, 3]}


# ------------------------------------------------------------- Use Cases


def fake_openai() -> types.ModuleType:
    """A stand-in ``openai`` module: ``OpenAI().chat.completions.create(model=, messages=)``."""
    module = types.ModuleType("openai")
    module.calls = []  # type: ignore[attr-defined]

    class Completions:
        def create(self, model: str, messages: List[Dict[str, str]]) -> Any:
            module.calls.append((model, messages))  # type: ignore[attr-defined]
            message = types.SimpleNamespace(content=f"{model} says hi")
            return types.SimpleNamespace(choices=[types.SimpleNamespace(message=message)])

    class OpenAI:
        def __init__(self) -> None:
            self.chat = types.SimpleNamespace(completions=Completions())

    module.OpenAI = OpenAI  # type: ignore[attr-defined]
    return module


OPENAI_CONTROLS = """\
version: "openai-controls"
default_action: deny
rules:
  - name: allowed_models
    tools: ["call_openai_api"]
    condition: tool_args.model not in ["gpt-4o-mini"]
    action: deny
    reason: "Only gpt-4o-mini may be used"
  - name: prompt_filter
    tools: ["call_openai_api"]
    condition: '"password" in tool_args.prompt.lower()'
    action: deny
    reason: "Prompts must not ask for passwords"
  - name: per_user_rate_limit
    tools: ["call_openai_api"]
    condition: session.tool_counts["call_openai_api"] >= 2
    action: deny
    reason: "At most 2 completions per user session"
  - name: cost_control
    tools: ["call_openai_api"]
    condition: session.estimated_cost > 1.0
    action: approve
    reason: "Spending more than 1.00 needs approval"
  - name: allow_completions
    tools: ["call_openai_api"]
    action: allow
"""


def test_ai_agent_control(
    server: TameServer, policy_server: Callable[[str], TameServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    openai = fake_openai()
    monkeypatch.setitem(sys.modules, "openai", openai)
    # The default policy has no rule for this tool: denied, and OpenAI is never called.
    tamesdk.configure(api_url=server.url)
    call_openai_api = run(seed.AI_AGENT_CONTROL)["call_openai_api"]
    with pytest.raises(PolicyViolationException) as denied:
        call_openai_api("hello")
    assert denied.value.decision.rule_name is None and openai.calls == []  # type: ignore[attr-defined]
    # "Policies can control" each of these, with the arguments the decorator sends
    # (the default model included).
    controls = policy_server(OPENAI_CONTROLS)

    def as_user(user: str) -> str:
        session = f"{user}-{uuid.uuid4()}"
        tamesdk.configure(api_url=controls.url, session_id=session, user_id=user)
        return session

    as_user("ann")
    with pytest.raises(PolicyViolationException, match="Only gpt-4o-mini"):
        call_openai_api("hello")  # model defaults to gpt-4
    assert call_openai_api("hello", model="gpt-4o-mini") == "gpt-4o-mini says hi"
    as_user("bob")
    with pytest.raises(PolicyViolationException, match="passwords"):
        call_openai_api("What is the admin PASSWORD?", model="gpt-4o-mini")
    as_user("cid")
    assert call_openai_api("one", model="gpt-4o-mini") and call_openai_api(
        "two", model="gpt-4o-mini"
    )
    with pytest.raises(PolicyViolationException, match="At most 2"):
        call_openai_api("three", model="gpt-4o-mini")
    session = as_user("dee")
    call_openai_api("pricey", model="gpt-4o-mini")
    with Client(api_url=controls.url) as client:
        first = client.get_session_logs(session)[0]
        client.update_result(session, first["id"], {"cost": 1.5})
    with pytest.raises(ApprovalRequiredException, match="Spending"):
        call_openai_api("more", model="gpt-4o-mini")
    assert [m for m, _ in openai.calls] == ["gpt-4o-mini"] * 4  # type: ignore[attr-defined]


def test_file_system_operations(server: TameServer, tmp_path: Path) -> None:
    session = f"fs-{uuid.uuid4()}"
    tamesdk.configure(api_url=server.url, session_id=session, approval_timeout=60)
    scope = run(seed.FILE_SYSTEM_OPERATIONS)
    write_system_config, read_user_file = scope["write_system_config"], scope["read_user_file"]
    assert write_system_config.__doc__ == "Writes require approval for system paths."
    # Writes require approval: the call waits until a person approves, then writes.
    target = tmp_path / "app.ini"
    with Client(api_url=server.url) as reviewer, ThreadPoolExecutor(1) as pool:
        approving = pool.submit(lambda: reviewer.approve(pending_approval(reviewer, session).id))
        write_system_config(str(target), "debug = true\n")
        approved = approving.result(timeout=60)
        assert target.read_text() == "debug = true\n"
        # Denied: nothing is written.
        refused = tmp_path / "other.ini"
        denying = pool.submit(lambda: reviewer.deny(pending_approval(reviewer, session).id))
        with pytest.raises(ApprovalDeniedException):
            write_system_config(str(refused), "x")
        denying.result(timeout=60)
        assert not refused.exists()
    entries = logs(server, session)
    assert [e["policy_decision"] for e in entries] == ["approve", "allow", "approve"]
    assert entries[0]["metadata"] == {"approval_message": "Modifying system files"}
    assert entries[1]["reason"] == f"Approved by {approved.resolved_by}"
    # System paths proper are refused outright by the default policy, which is stricter.
    with pytest.raises(PolicyViolationException):
        write_system_config("/etc/app.conf", "x")
    # Regular files are auto-approved.
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes")
    assert read_user_file(str(notes)) == "my notes"


def test_database_operations(server: TameServer, caplog: pytest.LogCaptureFixture) -> None:
    tamesdk.configure(api_url=server.url)
    deleted: List[str] = []
    scope = run(
        seed.DATABASE_OPERATIONS,
        {
            "execute_sql": lambda sql: [("row", 1)],
            "delete_user": lambda uid: deleted.append(uid) or True,
        },
    )
    # All database queries are logged.
    with caplog.at_level(logging.INFO, logger="tamesdk.actions"):
        assert scope["query_database"]("SELECT * FROM users") == [("row", 1)]
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0] == 'query_database called with {"sql": "SELECT * FROM users"}'
    assert messages[1].startswith("query_database succeeded in")
    # Deletions require policy approval: the sensitive metadata makes the policy ask a human.
    with pytest.raises(ApprovalRequiredException) as approval:
        scope["delete_user_data"]("user-42")
    assert approval.value.decision.rule_name == "approve_sensitive" and deleted == []


def fake_mcp() -> types.ModuleType:
    """A stand-in ``mcp`` package with a ``types`` module, as the example imports it."""
    module = types.ModuleType("mcp")
    module.types = types.ModuleType("mcp.types")  # type: ignore[attr-defined]
    return module


class FakeMCPSession:
    """Stands in for ``self.mcp_session``, which the example never sets."""

    def __init__(self) -> None:
        self.calls: List[Any] = []

    async def call_tool(self, tool_name: str, args: Dict[str, Any]) -> Dict[str, Any]:
        self.calls.append((tool_name, args))
        return {"content": [{"type": "text", "text": f"{tool_name} done"}]}


def test_mcp_agent_integration(server: TameServer, monkeypatch: pytest.MonkeyPatch) -> None:
    mcp = fake_mcp()
    monkeypatch.setitem(sys.modules, "mcp", mcp)
    monkeypatch.setitem(sys.modules, "mcp.types", mcp.types)  # type: ignore[attr-defined]
    tamesdk.configure(api_url=server.url)
    agent = run(seed.MCP_AGENT_INTEGRATION)["TameWrappedMCPAgent"]()
    agent.mcp_session = FakeMCPSession()

    async def scenario() -> Any:
        done = await agent.execute_tool("read_file", {"path": "/tmp/report.txt"})
        with pytest.raises(PolicyViolationException):
            await agent.execute_tool("read_file", {"path": "/root/.ssh/id_rsa"})
        return done

    assert asyncio.run(scenario()) == {"content": [{"type": "text", "text": "read_file done"}]}
    assert agent.mcp_session.calls == [("read_file", {"path": "/tmp/report.txt"})]
    # Every MCP tool call goes through Tame.
    entries = logs(server, agent.client.session_id)
    assert [e["policy_decision"] for e in entries] == ["allow", "deny"]
    assert entries[0]["execution_status"] == "success"
    agent.client.close()


# ------------------------------------------------------------- CLI


def shell(
    script: str, server_url: str, home: Path, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAME_")}
    env.update(
        HOME=str(home),
        TAME_API_URL=server_url,
        PATH=f"{TAMESDK_CLI.parent}{os.pathsep}{env.get('PATH', '')}",
    )
    return subprocess.run(
        ["bash", "-c", script], env=env, input=stdin, capture_output=True, text=True, timeout=60
    )


def test_cli_usage(server: TameServer, tmp_path: Path) -> None:
    commands = [line for line in seed.CLI_USAGE.splitlines() if line and not line.startswith("#")]
    assert commands == [
        "tamesdk status",
        """tamesdk test read_file --args '{"path": "/tmp/test.txt"}'""",
        "tamesdk logs --format table",
        "tamesdk interactive",
        "tamesdk policy",
    ]
    outputs = {}
    for command in commands:
        result = shell(command, server.url, tmp_path)
        assert result.returncode == 0, (command, result.stderr)
        outputs[command.split()[1]] = result.stdout
    assert "health:         ok" in outputs["status"]
    assert "decision:       allow" in outputs["test"]
    assert outputs["logs"].startswith("Sessions (page 1,")
    assert "Current policy" in outputs["policy"]


def test_cli_configuration(server: TameServer, tmp_path: Path) -> None:
    result = shell(seed.CLI_CONFIGURATION.replace(SEED_URL, server.url), "", tmp_path)
    assert result.returncode == 0, result.stderr
    saved = yaml.safe_load((tmp_path / ".tame" / "config.yaml").read_text())
    assert saved["api_url"] == server.url and saved["api_key"] == "your-api-key"
    assert "health:         ok" in result.stdout


# ------------------------------------------------------------- Configuration


def test_environment_variables(tmp_path: Path) -> None:
    probe = "import json, tamesdk; print(json.dumps(tamesdk.get_config().to_dict()))"
    script = f"set -a\n{seed.ENVIRONMENT_VARIABLES}set +a\n'{sys.executable}' -c '{probe}'\n"
    result = shell(script, "", tmp_path)
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)
    assert config["api_url"] == "http://localhost:8000" and config["api_key"] == "your-secret-key"
    assert config["session_id"] == "custom-session" and config["agent_id"] == "my-agent"
    assert config["user_id"] == "user123" and config["bypass_mode"] is False


def test_programmatic_configuration() -> None:
    scope = run(seed.PROGRAMMATIC_CONFIGURATION)
    config = tamesdk.get_config()
    assert (config.api_url, config.api_key, config.session_id, config.agent_id) == (
        "http://localhost:8000",
        "your-api-key",
        "custom-session",
        "my-agent",
    )
    assert config.timeout == 30.0 and config.raise_on_deny is True
    client = scope["client"]
    assert client.config.api_url == "http://prod.tame.internal:8000"
    assert client.config.api_key == "prod-key" and client.config.agent_id == "production-agent"
    assert client.config.session_id == "custom-session"  # the rest comes from configure()
    client.close()


def test_configuration_file() -> None:
    path = Path.home() / ".tame" / "config.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(seed.CONFIGURATION_FILE)
    assert tamesdk.get_config() == tamesdk.Config(
        api_url="http://localhost:8000",
        api_key="your-api-key",
        session_id="dev-session",
        agent_id="development-agent",
        timeout=30.0,
        raise_on_deny=True,
        raise_on_approve=True,
        bypass_mode=False,
    )


# ------------------------------------------------------------- Policy Examples


def test_basic_file_access_policy(policy_server: Callable[[str], TameServer]) -> None:
    s = policy_server(seed.BASIC_FILE_ACCESS_POLICY)
    with Client(api_url=s.url) as client:
        temp = client.enforce("read_file", {"path": "/tmp/safe_file.txt"})
        etc = client.enforce("read_file", {"path": "/etc/passwd"})
        sys_ = client.enforce("read_file", {"path": "/sys/kernel"})
        home = client.enforce("delete_file", {"path": "/home/user/document.txt"})
    assert temp.is_allowed and temp.rule_name == "allow_temp_files"
    assert etc.is_denied and sys_.is_denied and etc.reason == "System files are not accessible"
    assert home.requires_approval and home.reason == "Deleting user files requires manual approval"


def test_advanced_agent_control_policy(policy_server: Callable[[str], TameServer]) -> None:
    s = policy_server(seed.ADVANCED_AGENT_CONTROL_POLICY)
    with Client(api_url=s.url) as client:
        # Limit API calls per session: the 102nd sees 101 earlier actions.
        for _ in range(101):
            assert client.enforce("api_search", {"q": "x"}).rule_name is None
        limited = client.enforce("api_search", {"q": "x"})
        assert limited.is_denied and limited.reason == "Rate limit exceeded for this session"
        # Sensitive operations outside business hours (UTC) need approval.
        before = datetime.now(timezone.utc).hour
        sensitive = client.enforce("deploy", {"sensitive": True}, session_id=f"s-{uuid.uuid4()}")
        if before == datetime.now(timezone.utc).hour:
            outside = before < 9 or before > 17
            assert sensitive.requires_approval is outside
        # Expensive models once the session has spent more than 10.0.
        session = f"cost-{uuid.uuid4()}"
        cheap = client.enforce("openai_completion", {"model": "gpt-4"}, session_id=session)
        client.update_result(session, cheap.log_id, {"status": "success", "cost": 10.5})
        pricey = client.enforce("openai_completion", {"model": "gpt-4"}, session_id=session)
        other = client.enforce("openai_completion", {"model": "small"}, session_id=session)
    assert cheap.rule_name is None and pricey.requires_approval
    assert pricey.reason == "High-cost model usage requires approval"
    assert other.rule_name is None


# ------------------------------------------------------------- Advanced Usage


def test_custom_error_handling(server: TameServer) -> None:
    tamesdk.configure(api_url=server.url)
    logger = logging.getLogger("seed.example")
    queued: List[Any] = []
    helpers = {
        "logger": logger,
        "safe_fallback": lambda: "fallback",
        "queue_for_approval": queued.append,
    }
    # dangerous_operation as the API reference defines it: the default policy denies it.
    helpers["dangerous_operation"] = run(
        seed.API_WITH_APPROVAL, {"tamesdk": tamesdk, "modify_system": lambda: "modified"}
    )["dangerous_operation"]
    assert run(seed.CUSTOM_ERROR_HANDLING, helpers)["result"] == "fallback"

    # One that needs approval instead: queued, and result is None.
    @tamesdk.enforce_policy(metadata={"sensitive": True})
    def dangerous_operation() -> str:
        return "modified"

    helpers["dangerous_operation"] = dangerous_operation
    assert run(seed.CUSTOM_ERROR_HANDLING, helpers)["result"] is None
    assert len(queued) == 1 and queued[0].requires_approval


def test_session_management(server: TameServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAME_API_URL", server.url)
    session = f"user-123-session-{uuid.uuid4()}"
    # Deploying waits for a human under the default policy, so the call raises.
    with pytest.raises(ApprovalRequiredException) as approval:
        run(seed.SESSION_MANAGEMENT.replace('"user-123-session"', f'"{session}"'))
    assert approval.value.decision.session_id == session
    # All actions in this session have the metadata.
    (entry,) = logs(server, session)
    assert entry["tool_name"] == "deploy_model" and entry["tool_args"] == {"version": "v2.1"}
    assert entry["metadata"] == {
        "user_role": "admin",
        "department": "engineering",
        "project": "ai-automation",
    }


def test_policy_testing(
    server: TameServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TAME_API_URL", server.url)
    scope = run(seed.POLICY_TESTING)
    assert capsys.readouterr().out.splitlines() == [
        "read_file: allow - Temporary files are open to agents",
        "read_file: deny - System files are not accessible",
        "delete_file: approve - This action changes things outside the agent and requires approval",
    ]
    # Tested, not executed: nothing was recorded.
    assert server.decisions(scope["client"].session_id) == []
    scope["client"].close()


def test_integration_with_monitoring(server: TameServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAME_API_URL", server.url)
    root = logging.getLogger()
    before = list(root.handlers)
    scope = run(seed.MONITORING_INTEGRATION)
    handler = next(h for h in root.handlers if h not in before)
    try:
        scope["logger"].warning("not an error: not sent")
        scope["logger"].error("disk full")
    finally:
        root.removeHandler(handler)
    # Errors are logged to Tame for monitoring.
    (entry,) = logs(server, handler.client.session_id)
    assert entry["tool_name"] == "log_error" and entry["policy_decision"] == "allow"
    assert entry["tool_args"] == {
        "message": "disk full",
        "level": "ERROR",
        "module": "test_seed_readme",
    }
    handler.client.close()


# ------------------------------------------------------------- API Reference


def test_api_reference_client() -> None:
    client = run(seed.API_CLIENT, {"tamesdk": tamesdk})["client"]
    assert client.config.api_url == "http://localhost:8000" and client.config.api_key == "your-key"
    assert client.session_id == "optional-session-id"
    client.close()


def test_api_reference_async_client(server: TameServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAME_API_URL", server.url)
    body = "".join(f"    {line}\n" for line in seed.API_ASYNC_CLIENT.splitlines())
    scope = run(f"async def example():\n{body}    return decision\n", {"tamesdk": tamesdk})
    decision = asyncio.run(scope["example"]())
    # enforce() answers with the decision; "tool_name" matches no rule: the default denies.
    assert decision.is_denied and decision.tool_name == "tool_name"


def test_api_reference_enforce_policy(server: TameServer) -> None:
    session = f"api-{uuid.uuid4()}"
    tamesdk.configure(api_url=server.url, session_id=session)
    processed: List[Any] = []
    scope = run(
        seed.API_ENFORCE_POLICY,
        {"tamesdk": tamesdk, "process": lambda a, b: processed.append((a, b))},
    )
    with pytest.raises(PolicyViolationException) as denied:  # Raise exception if denied
        scope["my_function"](1, 2)
    assert processed == [] and denied.value.decision.tool_name == "custom_name"
    (entry,) = logs(server, session)
    assert entry["tool_name"] == "custom_name" and entry["tool_args"] == {"arg1": 1, "arg2": 2}
    assert entry["metadata"] == {"key": "value"}


def test_api_reference_with_approval(server: TameServer) -> None:
    tamesdk.configure(api_url=server.url)
    modified: List[bool] = []
    scope = run(
        seed.API_WITH_APPROVAL, {"tamesdk": tamesdk, "modify_system": lambda: modified.append(True)}
    )
    # No rule of the default policy covers it, so it is denied, and does not run.
    with pytest.raises(PolicyViolationException) as denied:
        scope["dangerous_operation"]()
    assert modified == [] and denied.value.decision.rule_name is None


def test_api_reference_log_action(caplog: pytest.LogCaptureFixture) -> None:
    scope = run(seed.API_LOG_ACTION, {"tamesdk": tamesdk, "transform": lambda data: data[::-1]})
    with caplog.at_level(logging.INFO, logger="tamesdk.actions"):
        assert scope["helper_function"]("abc") == "cba"
    assert [r.status for r in caplog.records if hasattr(r, "status")] == ["success"]


def test_api_reference_enforcement_decision() -> None:
    fields = re.findall(r"^    (\w+): ", seed.API_ENFORCEMENT_DECISION, re.M)
    ours = {f.name for f in dataclasses.fields(tamesdk.EnforcementDecision)}
    assert set(fields) <= ours
    assert [a.name for a in tamesdk.ActionType] == ["ALLOW", "DENY", "APPROVE"]


def test_api_reference_exceptions() -> None:
    import tamesdk.exceptions

    for name in (
        "TameSDKException",
        "PolicyViolationException",
        "ApprovalRequiredException",
        "ConnectionException",
        "AuthenticationException",
        "ValidationException",
        "RateLimitException",
    ):
        assert getattr(tamesdk, name) is getattr(tamesdk.exceptions, name)
