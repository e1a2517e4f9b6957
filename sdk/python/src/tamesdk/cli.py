"""The ``tamesdk`` command: check the server, test a tool call against the
policy, read session logs, show or validate the policy, list and resolve
approvals, an interactive prompt, and the config file.

Exit codes (see :class:`ExitCode`) let scripts tell a deny from an outage.
"""

from __future__ import annotations

import enum
import json
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List, NoReturn, Optional

import click

from ._render import Output
from ._version import __version__
from .client import Client
from .config import Config, default_config_path, load_config
from .exceptions import (
    AuthenticationException,
    ConflictException,
    ConnectionException,
    NotFoundException,
    RateLimitException,
    TameSDKException,
    ValidationException,
)
from .models import Approval, EnforcementDecision, PolicyInfo


class ExitCode(enum.IntEnum):
    """What the command's exit status means."""

    OK = 0  # done; for `test`, the policy allows the call
    ERROR = 1  # any other error
    USAGE = 2  # wrong command line
    DENIED = 3  # `test`: the policy denies the call
    APPROVAL_REQUIRED = 4  # `test`: the policy wants a human's approval
    UNREACHABLE = 5  # no answer: connection refused, timeout, or 503
    AUTH = 6  # 401 or 403: missing, wrong or insufficient API key
    INVALID = 7  # refused as invalid (400, 404, 413, 422), or an invalid file
    RATE_LIMITED = 8  # 429
    CONFLICT = 9  # 409: `approvals approve|deny` of one no longer pending


FORMAT = click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="table: for people (plain text when not on a terminal); json: for programs.",
)


def _exit_code(error: TameSDKException) -> ExitCode:
    if isinstance(error, ConnectionException):
        return ExitCode.UNREACHABLE
    if isinstance(error, AuthenticationException):
        return ExitCode.AUTH
    if isinstance(error, (ValidationException, NotFoundException)):
        return ExitCode.INVALID
    if isinstance(error, RateLimitException):
        return ExitCode.RATE_LIMITED
    if isinstance(error, ConflictException):
        return ExitCode.CONFLICT
    return ExitCode.ERROR


def _fail(message: str, code: ExitCode) -> NoReturn:
    click.echo(f"tamesdk: error: {message}", err=True)
    raise click.exceptions.Exit(int(code))


def _config(ctx: click.Context) -> Config:
    options: Dict[str, Any] = ctx.find_root().obj
    try:
        return load_config(options["config_file"], api_url=options["api_url"])
    except ValidationException as e:
        _fail(e.message, ExitCode.INVALID)


def _json_object(text: Optional[str], option: str) -> Dict[str, Any]:
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise click.BadParameter(f"not JSON: {e}", param_hint=option) from e
    if not isinstance(value, dict):
        raise click.BadParameter("must be a JSON object", param_hint=option)
    return value


def _client(ctx: click.Context) -> Client:
    return Client(config=_config(ctx))


def _run(ctx: click.Context, action: Callable[[], Optional[ExitCode]]) -> None:
    """Run a command's body; map SDK errors to a message and an exit code."""
    try:
        code = action()
    except TameSDKException as e:
        retry = ""
        if isinstance(e, RateLimitException) and e.retry_after is not None:
            retry = f" (retry after {e.retry_after:g} s)"
        _fail(f"{e.message}{retry}", _exit_code(e))
    ctx.exit(int(code or ExitCode.OK))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Config file to read (default ~/.tame/config.yaml when it exists).",
)
@click.option(
    "--api-url", default=None, help="The Tame server (overrides TAME_API_URL and the file)."
)
@click.version_option(__version__, prog_name="tamesdk")
@click.pass_context
def cli(ctx: click.Context, config_file: Optional[str], api_url: Optional[str]) -> None:
    """Tame from the command line: check the server, test tool calls against
    the policy, read session logs, resolve approvals."""
    ctx.obj = {"config_file": config_file, "api_url": api_url}


# ---------------------------------------------------------------- status


@cli.command()
@FORMAT
@click.pass_context
def status(ctx: click.Context, fmt: str) -> None:
    """Check that the server answers, and show its version, policy and storage."""
    out = Output(fmt)

    def action() -> None:
        with _client(ctx) as client:
            health = client.health()
            info = client.get_status()
        if out.json_mode:
            out.data({"api_url": client.config.api_url, "health": health, "status": info})
            return
        policy = info.get("policy") or {}
        out.fields(
            "Tame server",
            [
                ("api_url", client.config.api_url),
                ("health", health.get("status")),
                ("version", info.get("version")),
                ("uptime_seconds", info.get("uptime_seconds")),
                ("policy_version", policy.get("version")),
                ("policy_hash", str(policy.get("hash") or "")[:16]),
                ("rules", policy.get("rules_count")),
                ("storage", info.get("storage")),
                ("auth", info.get("auth")),
                ("decisions", (info.get("counts") or {}).get("decisions")),
            ],
        )

    _run(ctx, action)


# ---------------------------------------------------------------- test


def _print_test(out: Output, tool_name: str, result: Dict[str, Any]) -> None:
    out.fields(
        f"Policy test: {tool_name}",
        [
            ("decision", result.get("decision")),
            ("rule", result.get("rule_name")),
            ("reason", result.get("reason")),
            ("policy_version", result.get("policy_version")),
        ],
    )
    trace = result.get("trace") or []
    if trace:
        out.table(
            "Rules tried",
            ["rule", "matched", "error"],
            [[t.get("rule"), t.get("matched"), t.get("error")] for t in trace],
        )


def _decision_code(decision: Any) -> ExitCode:
    return {
        "deny": ExitCode.DENIED,
        "approve": ExitCode.APPROVAL_REQUIRED,
    }.get(str(decision), ExitCode.OK)


@cli.command()
@click.argument("tool_name")
@click.option(
    "--args",
    "args_json",
    default=None,
    help='The tool\'s arguments as a JSON object: \'{"path": "/tmp/a"}\'.',
)
@click.option("--metadata", "metadata_json", default=None, help="Metadata as a JSON object.")
@click.option("--session-id", default=None, help="Test as within this session (its counts apply).")
@click.option("--agent-id", default=None)
@click.option("--user-id", default=None)
@FORMAT
@click.pass_context
def test(
    ctx: click.Context,
    tool_name: str,
    args_json: Optional[str],
    metadata_json: Optional[str],
    session_id: Optional[str],
    agent_id: Optional[str],
    user_id: Optional[str],
    fmt: str,
) -> None:
    """Ask what the policy would decide about a tool call, without recording it.

    Exits 0 when allowed, 3 when denied, 4 when approval is required."""
    tool_args = _json_object(args_json, "--args")
    metadata = _json_object(metadata_json, "--metadata")
    out = Output(fmt)

    def action() -> ExitCode:
        with _client(ctx) as client:
            result = client.test_policy(
                tool_name,
                tool_args,
                session_id=session_id,
                agent_id=agent_id,
                user_id=user_id,
                metadata=metadata,
            )
        if out.json_mode:
            out.data(result)
        else:
            _print_test(out, tool_name, result)
        return _decision_code(result.get("decision"))

    _run(ctx, action)


# ---------------------------------------------------------------- logs


def _print_entries(out: Output, title: str, entries: List[Dict[str, Any]]) -> None:
    out.table(
        title,
        ["time", "tool", "args", "decision", "rule", "reason", "status", "ms"],
        [
            [
                e.get("timestamp"),
                e.get("tool_name"),
                e.get("tool_args"),
                e.get("policy_decision"),
                e.get("policy_rule"),
                e.get("reason"),
                e.get("execution_status"),
                e.get("execution_duration_ms"),
            ]
            for e in entries
        ],
    )


@cli.command()
@click.option(
    "--session-id",
    default=None,
    help="Show this session's decisions (default: TAME_SESSION_ID; without one, list sessions).",
)
@click.option("--page", default=1, show_default=True, type=click.IntRange(min=1))
@click.option("--page-size", default=50, show_default=True, type=click.IntRange(1, 1000))
@FORMAT
@click.pass_context
def logs(
    ctx: click.Context, session_id: Optional[str], page: int, page_size: int, fmt: str
) -> None:
    """Show a session's decisions with their results, or list the sessions."""
    out = Output(fmt)

    def action() -> None:
        with _client(ctx) as client:
            chosen = session_id or client.config.session_id
            if chosen:
                entries = client.get_session_logs(chosen)
                if out.json_mode:
                    out.data(entries)
                else:
                    _print_entries(out, f"Session {chosen}", entries)
                return
            listing = client.list_sessions(page=page, page_size=page_size)
        if out.json_mode:
            out.data(listing)
            return
        sessions = listing.get("sessions") or []
        out.table(
            f"Sessions (page {listing.get('page')}, {listing.get('total_count')} in all)",
            [
                "session",
                "started",
                "last",
                "calls",
                "allowed",
                "denied",
                "approval",
                "agent",
                "user",
            ],
            [
                [
                    s.get("session_id"),
                    s.get("start_time"),
                    s.get("end_time"),
                    s.get("total_calls"),
                    s.get("allowed_calls"),
                    s.get("denied_calls"),
                    s.get("approved_calls"),
                    s.get("agent_id"),
                    s.get("user_id"),
                ]
                for s in sessions
            ],
        )

    _run(ctx, action)


# ---------------------------------------------------------------- policy


def _print_policy(out: Output, info: PolicyInfo) -> None:
    out.fields(
        "Current policy",
        [
            ("version", info.version),
            ("description", info.description),
            ("hash", info.hash),
            ("rules", info.rules_count),
            ("strategy", info.strategy),
            ("default_action", info.default_action),
            ("last_updated", info.last_updated.isoformat() if info.last_updated else None),
        ],
    )
    out.table(
        "Rules, in order",
        ["name", "action", "tools", "description"],
        [
            [
                r.get("name"),
                r.get("action"),
                ", ".join(r.get("tools") or []) or "*",
                r.get("description"),
            ]
            for r in info.rules
        ],
    )


@cli.command()
@click.option(
    "--validate",
    "validate_file",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Check this policy file on the server instead (exit 7 if it has errors).",
)
@FORMAT
@click.pass_context
def policy(ctx: click.Context, validate_file: Optional[str], fmt: str) -> None:
    """Show the policy the server is using, or validate a policy file."""
    out = Output(fmt)

    def action() -> ExitCode:
        with _client(ctx) as client:
            if validate_file is None:
                info = client.get_policy_info()
                if out.json_mode:
                    out.data(info.to_dict())
                else:
                    _print_policy(out, info)
                return ExitCode.OK
            report = client.validate_policy(Path(validate_file).read_text())
        if out.json_mode:
            out.data(report)
        else:
            valid = bool(report.get("valid"))
            out.line(
                f"{validate_file}: " + ("valid" if valid else "refused"),
                "bold green" if valid else "bold red",
            )
            for kind in ("errors", "warnings"):
                for d in report.get(kind) or []:
                    rule = f' rule "{d["rule"]}"' if d.get("rule") else ""
                    where = f"{validate_file}:{d.get('line')}:{d.get('column')}{rule}"
                    out.line(f"{where}: {kind[:-1]}: {d.get('message')}")
        return ExitCode.OK if report.get("valid") else ExitCode.INVALID

    _run(ctx, action)


# ---------------------------------------------------------------- approvals

APPROVAL_STATUSES = ["pending", "approved", "denied", "expired", "all"]


def _approval_rows(approval: Approval) -> List[Any]:
    return [
        ("id", approval.id),
        ("status", approval.status.value),
        ("tool", approval.tool_name),
        ("args", approval.tool_args),
        ("session", approval.session_id),
        ("rule", approval.rule_name),
        ("reason", approval.reason),
        ("requested_by", approval.requested_by),
        ("created_at", approval.created_at.isoformat() if approval.created_at else None),
        ("expires_at", approval.expires_at.isoformat() if approval.expires_at else None),
        ("resolved_by", approval.resolved_by),
        ("resolved_at", approval.resolved_at.isoformat() if approval.resolved_at else None),
        ("comment", approval.comment),
        ("used_by", approval.consumed_log_id),
    ]


def _print_approval(out: Output, title: str, approval: Approval) -> None:
    out.fields(title, _approval_rows(approval))
    if approval.history:
        out.table(
            "History",
            ["time", "kind", "decision", "by", "log_id"],
            [
                [
                    h.get("timestamp"),
                    h.get("kind"),
                    h.get("decision"),
                    h.get("principal"),
                    h.get("log_id"),
                ]
                for h in approval.history
            ],
        )


@cli.group()
def approvals() -> None:
    """List approvals and approve or deny them (an approver or admin key).

    Exits 0 when done, 9 when the approval is no longer pending (already
    resolved or expired), 6 when the key may not (an agent key, or the key
    that asked for it), 7 when there is no such approval."""


@approvals.command("list")
@click.option(
    "--status",
    type=click.Choice(APPROVAL_STATUSES),
    default="pending",
    show_default=True,
    help="Which approvals; all: every status.",
)
@click.option("--limit", type=click.IntRange(1, 1000), default=None, help="At most this many.")
@FORMAT
@click.pass_context
def approvals_list(ctx: click.Context, status: str, limit: Optional[int], fmt: str) -> None:
    """The approvals with a status, newest first."""
    out = Output(fmt)

    def action() -> None:
        with _client(ctx) as client:
            found = client.list_approvals(status=status, limit=limit)
        if out.json_mode:
            out.data([a.to_dict() for a in found])
            return
        out.table(
            f"Approvals ({status}): {len(found)}",
            [
                "id",
                "status",
                "tool",
                "args",
                "session",
                "requested_by",
                "expires",
                "resolved_by",
                "comment",
            ],
            [
                [
                    a.id,
                    a.status.value,
                    a.tool_name,
                    a.tool_args,
                    a.session_id,
                    a.requested_by,
                    a.expires_at.isoformat() if a.expires_at else None,
                    a.resolved_by,
                    a.comment,
                ]
                for a in found
            ],
        )

    _run(ctx, action)


@approvals.command("show")
@click.argument("approval_id")
@FORMAT
@click.pass_context
def approvals_show(ctx: click.Context, approval_id: str, fmt: str) -> None:
    """One approval, with its history: requested, resolved, used or expired."""
    out = Output(fmt)

    def action() -> None:
        with _client(ctx) as client:
            approval = client.get_approval(approval_id)
        if out.json_mode:
            out.data(approval.to_dict())
        else:
            _print_approval(out, f"Approval {approval.id}", approval)

    _run(ctx, action)


def _resolve_command(approve: bool) -> Callable[..., None]:
    verb = "approve" if approve else "deny"

    @click.argument("approval_id")
    @click.option("--comment", default=None, help="Why; recorded in the audit log.")
    @FORMAT
    @click.pass_context
    def command(ctx: click.Context, approval_id: str, comment: Optional[str], fmt: str) -> None:
        out = Output(fmt)

        def action() -> None:
            with _client(ctx) as client:
                resolved = getattr(client, verb)(approval_id, comment=comment)
            if out.json_mode:
                out.data(resolved.to_dict())
            else:
                _print_approval(out, f"Approval {resolved.id}: {resolved.status.value}", resolved)

        _run(ctx, action)

    command.__doc__ = f"{verb.capitalize()} a pending approval (exit 9 if it is no longer pending)."
    return command


approvals.command("approve")(_resolve_command(True))
approvals.command("deny")(_resolve_command(False))


# ---------------------------------------------------------------- interactive

HELP = """Commands:
  TOOL [ARGS_JSON]          what the policy would decide (nothing recorded)
  test TOOL [ARGS_JSON]     the same
  enforce TOOL [ARGS_JSON]  ask for a real decision, recorded in this session
  logs                      this session's decisions
  policy                    the current policy
  status                    the server's status
  help                      this list
  quit, exit                leave (so does end of input)"""


def _print_decision(out: Output, decision: EnforcementDecision) -> None:
    rows = [
        ("decision", decision.action.value),
        ("rule", decision.rule_name),
        ("reason", decision.reason),
        ("log_id", decision.log_id),
    ]
    if decision.approval_id:
        # What a human approves (`tamesdk approvals approve ID`) and the call is retried with.
        rows.append(("approval_id", decision.approval_id))
    out.fields(f"Decision: {decision.tool_name}", rows)


def _interactive_line(out: Output, client: Client, line: str) -> bool:
    """Carry out one line; False to stop."""
    command, _, rest = line.partition(" ")
    rest = rest.strip()
    if command in ("quit", "exit"):
        return False
    if command == "help":
        out.line(HELP)
    elif command == "status":
        info = client.get_status()
        out.fields(
            "Tame server",
            [
                ("version", info.get("version")),
                ("policy", (info.get("policy") or {}).get("version")),
                ("auth", info.get("auth")),
            ],
        )
    elif command == "policy":
        _print_policy(out, client.get_policy_info())
    elif command == "logs":
        try:
            entries = client.get_session_logs()
        except NotFoundException:
            entries = []
        _print_entries(out, f"Session {client.session_id}", entries)
    else:
        enforce = command == "enforce"
        if command in ("test", "enforce"):
            command, _, rest = rest.partition(" ")
            rest = rest.strip()
        if not command:
            click.echo("which tool? (type help)", err=True)
            return True
        try:
            tool_args = json.loads(rest) if rest else {}
        except json.JSONDecodeError as e:
            click.echo(f"error: arguments must be a JSON object: {e}", err=True)
            return True
        if not isinstance(tool_args, dict):
            click.echo("error: arguments must be a JSON object", err=True)
            return True
        if enforce:
            _print_decision(out, client.enforce(command, tool_args))
        else:
            _print_test(out, command, client.test_policy(command, tool_args))
    return True


@cli.command()
@click.pass_context
def interactive(ctx: click.Context) -> None:
    """A prompt for trying tool calls against the policy (type help)."""
    out = Output("table")
    prompt = "tame> " if sys.stdin.isatty() else ""

    def action() -> None:
        with _client(ctx) as client:
            if prompt:
                out.line(
                    f"Tame at {client.config.api_url}, session {client.session_id}. Type help."
                )
            while True:
                try:
                    line = input(prompt).strip()
                except EOFError:
                    return
                if not line or line.startswith("#"):
                    continue
                try:
                    if not _interactive_line(out, client, line):
                        return
                except TameSDKException as e:
                    click.echo(f"error: {e.message}", err=True)

    _run(ctx, action)


# ---------------------------------------------------------------- config


@cli.group()
def config() -> None:
    """Show the settings in force, or save them to a config file."""


@config.command("show")
@FORMAT
@click.pass_context
def config_show(ctx: click.Context, fmt: str) -> None:
    """The settings in force (the API key shortened)."""
    out = Output(fmt)
    settings = _config(ctx).to_dict(mask_secrets=True)
    if out.json_mode:
        out.data(settings)
    else:
        out.fields("tamesdk configuration", list(settings.items()))


@config.command("save")
@click.option(
    "--file",
    "target",
    type=click.Path(dir_okay=False),
    default=None,
    help="Where to write (default ~/.tame/config.yaml).",
)
@click.pass_context
def config_save(ctx: click.Context, target: Optional[str]) -> None:
    """Write the settings in force (environment, --api-url, --config) to a file."""
    settings = _config(ctx)
    try:
        path = settings.save(target if target is not None else default_config_path())
    except OSError as e:
        _fail(f"cannot write the config file: {e}", ExitCode.ERROR)
    click.echo(f"saved to {path}")


def main() -> None:
    """Entry point of the ``tamesdk`` command."""
    cli(prog_name="tamesdk")
