"""The ``tamesdk`` command as a subprocess against the real server: its
output (plain text on a pipe, rich on a terminal, JSON when asked) and its
exit codes."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import uuid
from pathlib import Path
from typing import Dict

import yaml

from tamesdk import Client
from tamesdk.cli import ExitCode

from .conftest import DEFAULT_POLICY, KEYS, TAMESDK_CLI, CliRunner, TameServer


def env_for(server: TameServer, **extra: str) -> Dict[str, str]:
    return {"TAME_API_URL": server.url, **extra}


def assert_plain(text: str) -> None:
    """No escape codes and no box drawing: text for pipes and files."""
    assert "\x1b[" not in text
    assert not any(ch in text for ch in "┏┃━│─╭╮")


def test_status(cli: CliRunner, server: TameServer) -> None:
    result = cli("status", env=env_for(server))
    assert result.returncode == ExitCode.OK, result.stderr
    assert_plain(result.stdout)
    assert f"api_url:        {server.url}" in result.stdout
    assert "health:         ok" in result.stdout and "auth:           open" in result.stdout
    as_json = json.loads(cli("status", "--format", "json", env=env_for(server)).stdout)
    assert as_json["health"]["status"] == "ok" and as_json["status"]["storage"] == "sqlite"


def test_status_when_the_server_is_down(cli: CliRunner, dead_url: str) -> None:
    result = cli("--api-url", dead_url, "status")
    assert result.returncode == ExitCode.UNREACHABLE == 5
    assert result.stdout == "" and "cannot connect" in result.stderr


def test_test_exit_codes_follow_the_decision(cli: CliRunner, server: TameServer) -> None:
    env = env_for(server)
    allowed = cli("test", "read_file", "--args", '{"path": "/tmp/test.txt"}', env=env)
    denied = cli("test", "read_file", "--args", '{"path": "/etc/passwd"}', env=env)
    approval = cli("test", "delete_file", "--args", '{"path": "/home/u/x"}', env=env)
    sensitive = cli(
        "test",
        "read_file",
        "--args",
        '{"path": "/tmp/a"}',
        "--metadata",
        '{"sensitive": true}',
        "--agent-id",
        "a",
        "--user-id",
        "u",
        "--session-id",
        "cli-test",
        env=env,
    )
    assert allowed.returncode == ExitCode.OK == 0
    assert denied.returncode == ExitCode.DENIED == 3
    assert approval.returncode == ExitCode.APPROVAL_REQUIRED == 4
    assert sensitive.returncode == ExitCode.APPROVAL_REQUIRED
    assert "decision:       allow" in allowed.stdout
    assert "rule:           allow_temp_files" in allowed.stdout
    assert "Rules tried" in allowed.stdout and "allow_temp_files      yes" in allowed.stdout
    assert "reason:         System files are not accessible" in denied.stdout
    assert "rule:           approve_sensitive" in sensitive.stdout
    assert_plain(allowed.stdout)


def test_test_json_is_parseable(cli: CliRunner, server: TameServer) -> None:
    result = cli(
        "test",
        "read_file",
        "--args",
        '{"path": "/etc/passwd"}',
        "--format",
        "json",
        env=env_for(server),
    )
    assert result.returncode == ExitCode.DENIED
    data = json.loads(result.stdout)
    assert data["decision"] == "deny" and data["rule_name"] == "deny_system_files"
    assert data["trace"][1] == {"rule": "deny_system_files", "matched": True, "error": None}


def test_test_refuses_bad_arguments(cli: CliRunner, server: TameServer) -> None:
    not_json = cli("test", "read_file", "--args", "{path: /tmp}", env=env_for(server))
    not_object = cli("test", "read_file", "--args", "[1]", env=env_for(server))
    no_tool = cli("test", env=env_for(server))
    for result in (not_json, not_object, no_tool):
        assert result.returncode == ExitCode.USAGE == 2 and result.stdout == ""
    assert "--args" in not_json.stderr and "JSON object" in not_object.stderr


def test_logs_of_a_session_and_the_session_list(cli: CliRunner, server: TameServer) -> None:
    session = f"cli-{uuid.uuid4()}"
    with Client(api_url=server.url, session_id=session, agent_id="cli-agent") as client:
        decision = client.enforce("read_file", {"path": "/tmp/a"})
        client.update_result(session, decision.log_id, {"status": "success", "duration_ms": 4})
        client.enforce("read_file", {"path": "/etc/passwd"})
    table = cli("logs", "--session-id", session, "--format", "table", env=env_for(server))
    assert table.returncode == 0, table.stderr
    assert_plain(table.stdout)
    lines = table.stdout.splitlines()
    assert lines[0] == f"Session {session}"
    assert lines[1].split() == [
        "time",
        "tool",
        "args",
        "decision",
        "rule",
        "reason",
        "status",
        "ms",
    ]
    assert "allow_temp_files" in lines[2] and "success" in lines[2] and lines[2].endswith("4")
    assert "deny_system_files" in lines[3]
    # TAME_SESSION_ID is the default session; --format json is the raw entries.
    as_json = cli("logs", "--format", "json", env=env_for(server, TAME_SESSION_ID=session))
    entries = json.loads(as_json.stdout)
    assert [e["policy_decision"] for e in entries] == ["allow", "deny"]
    # Without a session: the list of sessions.
    listing = cli("logs", "--page-size", "1000", env=env_for(server))
    assert listing.returncode == 0 and listing.stdout.startswith("Sessions (page 1,")
    assert any(line.startswith(session) for line in listing.stdout.splitlines())
    listing_json = json.loads(cli("logs", "--format", "json", env=env_for(server)).stdout)
    assert listing_json["page"] == 1 and listing_json["total_count"] >= 1
    missing = cli("logs", "--session-id", "no-such-session", env=env_for(server))
    assert missing.returncode == ExitCode.INVALID and "no session" in missing.stderr


def test_policy_show_and_validate(cli: CliRunner, server: TameServer, tmp_path: Path) -> None:
    shown = cli("policy", env=env_for(server))
    assert shown.returncode == 0
    assert_plain(shown.stdout)
    assert "version:        1.1" in shown.stdout and "default_action: deny" in shown.stdout
    assert "Rules, in order" in shown.stdout and "deny_system_files" in shown.stdout
    info = json.loads(cli("policy", "--format", "json", env=env_for(server)).stdout)
    assert info["rules_count"] == 8 and info["rules"][0]["name"] == "session_action_limit"
    valid = cli("policy", "--validate", str(DEFAULT_POLICY), env=env_for(server))
    assert valid.returncode == 0 and valid.stdout.strip() == f"{DEFAULT_POLICY}: valid"
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        'version: "1"\nrules:\n  - name: deny_etc\n'
        '    condition: tool_args.path.startwith("/etc/")\n    action: deny\n'
    )
    refused = cli("policy", "--validate", str(broken), env=env_for(server))
    assert refused.returncode == ExitCode.INVALID == 7
    assert f"{broken}: refused" in refused.stdout
    assert 'rule "deny_etc": error: unknown method "startwith"' in refused.stdout
    report = json.loads(
        cli("policy", "--validate", str(broken), "--format", "json", env=env_for(server)).stdout
    )
    assert report["valid"] is False and report["errors"][0]["line"] == 4


def test_interactive_reads_commands_from_a_pipe(cli: CliRunner, server: TameServer) -> None:
    script = "\n".join(
        [
            "help",
            "# a comment, then a blank line",
            "",
            'read_file {"path": "/etc/passwd"}',
            'test read_file {"path": "/tmp/a"}',
            'enforce delete_file {"path": "/home/u/x"}',
            "logs",
            "policy",
            "status",
            "read_file {not json",
            "read_file [1]",
            "test",
            "quit",
            "status",  # never reached
        ]
    )
    result = cli("interactive", env=env_for(server), input=script)
    assert result.returncode == 0
    assert_plain(result.stdout)
    out = result.stdout
    assert "tame> " not in out  # no prompt when the input is not a terminal
    assert "enforce TOOL [ARGS_JSON]" in out
    assert "decision:       deny" in out and "decision:       allow" in out
    assert "Decision: delete_file" in out and "decision:    approve" in out
    approval = re.search(r"approval_id: (\S+)", out)
    assert approval, out
    listed = cli("approvals", "list", "--format", "json", env=env_for(server))
    assert approval.group(1) in listed.stdout
    assert "approve_changes" in out.split("Session ")[1]  # the enforced call is in the logs
    assert "Current policy" in out and "Tame server" in out
    assert out.count("Tame server") == 1  # nothing after quit
    assert result.stderr.count("arguments must be a JSON object") == 2
    assert "which tool?" in result.stderr


def test_interactive_ends_at_end_of_input_and_survives_errors(
    cli: CliRunner, auth_server: TameServer
) -> None:
    result = cli("interactive", env=env_for(auth_server), input="read_file\nstatus\n")
    assert result.returncode == 0
    assert result.stderr.count("missing credentials") == 2


def test_config_save_show_and_use(cli: CliRunner, server: TameServer, tmp_path: Path) -> None:
    env = env_for(server, TAME_API_KEY="secret-key-0123456789", TAME_AGENT_ID="cli-agent")
    saved = cli("config", "save", env=env)
    default_file = tmp_path / "home" / ".tame" / "config.yaml"
    assert saved.returncode == 0 and saved.stdout.strip() == f"saved to {default_file}"
    data = yaml.safe_load(default_file.read_text())
    assert data["api_url"] == server.url and data["api_key"] == "secret-key-0123456789"
    assert (default_file.stat().st_mode & 0o777) == 0o600
    # The saved file is read by default, and --config reads another one.
    shown = json.loads(cli("config", "show", "--format", "json").stdout)
    assert shown["api_url"] == server.url and shown["agent_id"] == "cli-agent"
    assert shown["api_key"] == "secr…"
    other = tmp_path / "other.yaml"
    cli("--api-url", "http://other:1", "config", "save", "--file", str(other))
    assert yaml.safe_load(other.read_text())["api_url"] == "http://other:1"
    plain = cli("--config", str(other), "config", "show")
    assert "api_url:          http://other:1" in plain.stdout
    assert cli("--config", str(default_file), "status").returncode == 0
    # --api-url beats the environment and the file.
    down = cli("--config", str(default_file), "--api-url", "http://127.0.0.1:9", "status")
    assert down.returncode == ExitCode.UNREACHABLE


def test_bad_config_file_exit_code(cli: CliRunner, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("api_ulr: x\n")
    result = cli("--config", str(bad), "status")
    assert result.returncode == ExitCode.INVALID and "unknown setting" in result.stderr
    unwritable = cli("config", "save", "--file", str(tmp_path / "bad.yaml" / "x"))
    assert unwritable.returncode == ExitCode.ERROR and "cannot write" in unwritable.stderr


def test_auth_and_rate_limit_exit_codes(
    cli: CliRunner, auth_server: TameServer, limited_server: TameServer
) -> None:
    no_key = cli("policy", env=env_for(auth_server))
    assert no_key.returncode == ExitCode.AUTH == 6 and "missing credentials" in no_key.stderr
    wrong_key = cli("logs", "--session-id", "x", env=env_for(auth_server, TAME_API_KEY="bad"))
    assert wrong_key.returncode == ExitCode.AUTH and "invalid API key" in wrong_key.stderr
    with_key = cli("policy", env=env_for(auth_server, TAME_API_KEY=auth_server.keys["agent"]))
    assert with_key.returncode == 0
    codes = [cli("policy", env=env_for(limited_server)).returncode for _ in range(6)]
    assert ExitCode.RATE_LIMITED in codes
    limited = cli("policy", env=env_for(limited_server))
    if limited.returncode == ExitCode.RATE_LIMITED:
        assert "retry after" in limited.stderr


def test_approvals_list_approve_deny(cli: CliRunner, auth_server: TameServer) -> None:
    session = f"cli-approvals-{uuid.uuid4()}"
    with Client(api_url=auth_server.url, api_key=KEYS["agent"], session_id=session) as agent:
        first = agent.enforce("delete_file", {"path": "/home/u/a.txt"}).approval_id
        second = agent.enforce("delete_file", {"path": "/home/u/b.txt"}).approval_id
    assert first and second
    approver = env_for(auth_server, TAME_API_KEY=KEYS["approver"])
    # The list shows the pending ones, as plain text on a pipe.
    listed = cli("approvals", "list", env=approver)
    assert listed.returncode == ExitCode.OK, listed.stderr
    assert_plain(listed.stdout)
    lines = listed.stdout.splitlines()
    assert lines[0].startswith("Approvals (pending): ")
    assert lines[1].split()[:4] == ["id", "status", "tool", "args"]
    mine = [line for line in lines if session in line]
    assert [line.split()[:3] for line in mine] == [
        [second, "pending", "delete_file"],
        [first, "pending", "delete_file"],
    ]
    shown = cli("approvals", "show", first, env=approver)
    assert shown.returncode == 0 and "status:       pending" in shown.stdout
    assert "History" in shown.stdout
    # Approve: exit 0. Again: exit 9, with the server's message.
    approved = cli("approvals", "approve", first, "--comment", "looks right", env=approver)
    assert approved.returncode == ExitCode.OK, approved.stderr
    assert "status:       approved" in approved.stdout
    assert "comment:      looks right" in approved.stdout
    twice = cli("approvals", "approve", first, env=approver)
    assert twice.returncode == ExitCode.CONFLICT == 9 and twice.stdout == ""
    assert f'approval "{first}" is already approved (409)' in twice.stderr
    denied = cli("approvals", "deny", second, "--format", "json", env=approver)
    assert denied.returncode == 0 and json.loads(denied.stdout)["status"] == "denied"
    assert cli("approvals", "deny", second, env=approver).returncode == ExitCode.CONFLICT
    # JSON lists, by status.
    as_json = cli("approvals", "list", "--status", "all", "--format", "json", env=approver)
    statuses = {a["id"]: a["status"] for a in json.loads(as_json.stdout)}
    assert statuses[first] == "approved" and statuses[second] == "denied"
    # Who may not: an agent key (its role), the key that asked (admin asking, then resolving).
    agent_env = env_for(auth_server, TAME_API_KEY=KEYS["agent"])
    refused = cli("approvals", "list", env=agent_env)
    assert refused.returncode == ExitCode.AUTH and "approver or admin role" in refused.stderr
    with Client(api_url=auth_server.url, api_key=KEYS["admin"]) as admin:
        own = admin.enforce("send_email", {"to": "x@example.com"}).approval_id
    assert own
    admin_env = env_for(auth_server, TAME_API_KEY=KEYS["admin"])
    own_refused = cli("approvals", "approve", own, env=admin_env)
    assert own_refused.returncode == ExitCode.AUTH and "key that asked" in own_refused.stderr
    unknown = cli("approvals", "approve", "no-such-approval", env=approver)
    assert unknown.returncode == ExitCode.INVALID and "no approval" in unknown.stderr
    bad = cli("approvals", "list", "--status", "maybe", env=approver)
    assert bad.returncode == ExitCode.USAGE


def test_version_and_help(cli: CliRunner) -> None:
    import tamesdk

    version = cli("--version")
    assert version.returncode == 0 and tamesdk.__version__ in version.stdout
    helped = cli("--help")
    for command in ("status", "test", "logs", "interactive", "policy", "approvals", "config"):
        assert command in helped.stdout
    assert cli("no-such-command").returncode == ExitCode.USAGE


def test_python_dash_m(server: TameServer) -> None:
    result = subprocess.run(
        [
            str(TAMESDK_CLI.parent / "python"),
            "-m",
            "tamesdk",
            "--api-url",
            server.url,
            "policy",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and json.loads(result.stdout)["version"] == "1.1"


def test_rich_tables_and_colour_on_a_terminal(server: TameServer, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAME_")}
    env.update(TAME_API_URL=server.url, HOME=str(tmp_path), COLUMNS="120", TERM="xterm")
    env.pop("NO_COLOR", None)
    primary, secondary = pty.openpty()
    process = subprocess.Popen(
        [str(TAMESDK_CLI), "test", "read_file", "--args", '{"path": "/etc/passwd"}'],
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        env=env,
        close_fds=True,
    )
    os.close(secondary)
    chunks = []
    while True:
        try:
            chunk = os.read(primary, 4096)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(primary)
    assert process.wait(timeout=30) == ExitCode.DENIED
    screen = b"".join(chunks).decode()
    assert "\x1b[" in screen  # colour
    assert "│" in screen or "┃" in screen  # a drawn table
    assert "deny_system_files" in screen
