"""Every example of this SDK's README (``sdk/python/README.md``), run as
written against the default server, with ``http://localhost:8000`` replaced
by the test server's address. The approvals command-line block runs against
the server with keys, its placeholders (the approver key, the two approval
ids) replaced by real ones. Not run: the install and server-start commands,
and the test command (it is this suite)."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest

import tamesdk

from .conftest import KEYS, REPO_ROOT, TAME_BIN, TAMESDK_CLI, TameServer

README = Path(__file__).resolve().parents[1] / "README.md"
SEED_URL = "http://localhost:8000"


def blocks(language: str) -> List[str]:
    return [
        code
        for lang, code in re.findall(r"```(\w+)\n(.*?)```", README.read_text(), re.S)
        if lang == language
    ]


def run_python(code: str, url: str) -> Dict[str, Any]:
    scope: Dict[str, Any] = {"__name__": "readme_example"}
    exec(compile(code.replace(SEED_URL, url), "<README example>", "exec"), scope)
    return scope


def test_the_readme_has_the_examples_this_file_runs() -> None:
    assert len(blocks("python")) == 9
    assert len(blocks("bash")) == 7
    assert len(blocks("yaml")) == 1


def test_basic_usage(server: TameServer, capsys: pytest.CaptureFixture[str]) -> None:
    run_python(blocks("python")[0], server.url)
    assert capsys.readouterr().out == "hello\nblocked: System files are not accessible\n"


def test_context_manager(server: TameServer, capsys: pytest.CaptureFixture[str]) -> None:
    run_python(blocks("python")[1], server.url)
    assert capsys.readouterr().out == "allow allow_temp_files\nTrue\n"
    assert not Path("/tmp/old.log").exists()


def test_async(server: TameServer, capsys: pytest.CaptureFixture[str]) -> None:
    run_python(blocks("python")[2], server.url)
    assert capsys.readouterr().out == "fetched /data\n"


def test_decorators(
    server: TameServer, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="tamesdk.actions"):
        run_python(blocks("python")[3], server.url)
    assert capsys.readouterr().out == "notes\nNone\n"
    messages = [r.getMessage() for r in caplog.records if r.name == "tamesdk.actions"]
    assert messages[0] == 'query_database called with {"sql": "SELECT 1"}'
    session = tamesdk.decorators.default_client().session_id
    with tamesdk.Client(api_url=server.url) as client:
        entries = client.get_session_logs(session)
    assert entries[0]["tool_args"] == {"path": "/tmp/notes.txt", "encoding": "utf-8"}
    assert entries[0]["metadata"] == {"origin": "docs"}
    assert [e["policy_decision"] for e in entries] == ["allow", "deny"]


def test_with_approval(server: TameServer, capsys: pytest.CaptureFixture[str]) -> None:
    scope = run_python(blocks("python")[4], server.url)
    assert capsys.readouterr().out == "deployed v2.1\n"
    with tamesdk.Client(api_url=server.url) as client:
        entries = client.get_session_logs(scope["session"])
    assert [e["policy_decision"] for e in entries] == ["approve", "allow"]
    assert entries[1]["reason"].endswith(": ship it")
    assert entries[1]["execution_status"] == "success"
    assert entries[1]["metadata"] == {"approval_message": "Deploys change production"}


def test_approvals_with_a_client(server: TameServer, capsys: pytest.CaptureFixture[str]) -> None:
    run_python(blocks("python")[5], server.url)
    assert capsys.readouterr().out.splitlines() == [
        "approve",
        "approved fine",
        "422",
        "allow",
        "409",
        "pending",
        "denied not now",
    ]


def test_in_code_configuration(server: TameServer, capsys: pytest.CaptureFixture[str]) -> None:
    run_python(blocks("python")[6], server.url)
    assert capsys.readouterr().out == f"my-agent\n{server.url} batch-agent nightly-run\n"


def test_api_reference(server: TameServer, capsys: pytest.CaptureFixture[str]) -> None:
    run_python(blocks("python")[7], server.url)
    assert capsys.readouterr().out.splitlines() == [
        "read_file: allow - Temporary files are open to agents",
        "read_file: deny - System files are not accessible",
        "delete_file: approve - This action changes things outside the agent and requires approval",
        "0.01",
        "8",
    ]


def test_exceptions(server: TameServer, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="readme_example"):
        run_python(blocks("python")[8], server.url)
    assert [
        (r.levelname, r.getMessage()) for r in caplog.records if r.name == "readme_example"
    ] == [
        ("ERROR", "Policy denied: System files are not accessible"),
        (
            "INFO",
            "Approval required: This action changes things outside the agent and requires approval",
        ),
    ]


def commands(block: str) -> List[Tuple[str, int]]:
    """The command lines of a bash block, each with the exit code its comment states (default 0)."""
    result = []
    for line in block.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        expected = re.search(r"# exit (\d+)", line)
        result.append((line, int(expected.group(1)) if expected else 0))
    return result


def test_command_line(server: TameServer, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAME_")}
    env.update(HOME=str(tmp_path), PATH=f"{TAMESDK_CLI.parent}{os.pathsep}{env['PATH']}")
    outputs = []
    for line, expected in commands(blocks("bash")[2].replace(SEED_URL, server.url)):
        if line.startswith("export "):
            name, value = line[len("export ") :].split("=", 1)
            env[name] = value
            continue
        result = subprocess.run(
            ["bash", "-c", line], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == expected, (line, result.stdout, result.stderr)
        outputs.append(result.stdout)
    assert len(outputs) == 11
    assert json.loads(outputs[3])["decision"] == "approve"
    assert "decision: allow" in outputs[4]
    assert json.loads(outputs[10])["total_count"] >= 1
    assert "api_url:          " + server.url in outputs[9]


def test_approvals_command_line(auth_server: TameServer, tmp_path: Path) -> None:
    session = f"readme-cli-{uuid.uuid4()}"
    with tamesdk.Client(
        api_url=auth_server.url, api_key=KEYS["agent"], session_id=session
    ) as agent:
        first = agent.enforce("send_email", {"to": "a@example.com"}).approval_id
        second = agent.enforce("send_email", {"to": "b@example.com"}).approval_id
    assert first and second
    block = (
        blocks("bash")[3]
        .replace(SEED_URL, auth_server.url)
        .replace("your-approver-key", KEYS["approver"])
        .replace("01a20cd4-aaaa", first)
        .replace("01a20cd4-bbbb", second)
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAME_")}
    env.update(HOME=str(tmp_path), PATH=f"{TAMESDK_CLI.parent}{os.pathsep}{env['PATH']}")
    outputs = []
    for line, expected in commands(block):
        if line.startswith("export "):
            name, value = line[len("export ") :].split("=", 1)
            env[name] = value
            continue
        result = subprocess.run(
            ["bash", "-c", line], env=env, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == expected, (line, result.stdout, result.stderr)
        outputs.append((result.stdout, result.stderr))
    assert len(outputs) == 6
    assert first in outputs[0][0] and second in outputs[0][0]
    statuses = {a["id"]: a["status"] for a in json.loads(outputs[1][0])}
    assert statuses[first] == statuses[second] == "pending"
    assert "History" in outputs[2][0] and "approve" in outputs[2][0]
    assert "approved" in outputs[3][0] and "fine" in outputs[3][0]
    assert "already approved" in outputs[4][1]
    assert "denied" in outputs[5][0] and "not now" in outputs[5][0]


def test_environment_variables(tmp_path: Path) -> None:
    probe = "import json, tamesdk; print(json.dumps(tamesdk.get_config().to_dict()))"
    script = f"set -a\n{blocks('bash')[4]}set +a\n'{sys.executable}' -c '{probe}'\n"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAME_")}
    env["HOME"] = str(tmp_path)
    result = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)
    assert config["api_key"] == "your-secret-key" and config["session_id"] == "custom-session"
    assert config["agent_id"] == "my-agent" and config["user_id"] == "user123"
    assert config["bypass_mode"] is False


def test_config_file() -> None:
    path = Path.home() / ".tame" / "config.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(blocks("yaml")[0])
    config = tamesdk.get_config()
    assert config.user_id == "dev-user" and config.metadata == {"team": "ops"}
    assert config.failure_mode == "fail_closed" and config.max_retries == 3
    assert config.approval_timeout == 300.0


def test_benchmark_runs(tmp_path: Path) -> None:
    (line,) = [c for c, _ in commands(blocks("bash")[6])]
    assert line == "sdk/python/.venv/bin/python sdk/python/bench/overhead.py"
    script = REPO_ROOT / line.split()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAME_")}
    env["TAME_BIN"] = str(TAME_BIN)
    result = subprocess.run(
        [sys.executable, str(script), "--iterations", "20", "--warmup", "5"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1].split()[:3] == ["µs", "per", "call"]
    assert [re.split(r"  +", line)[0] for line in lines[2:]] == [
        "@enforce_policy, sync (2 requests)",
        "Client.enforce (1 request)",
        "@enforce_policy, async (2 requests)",
    ]
