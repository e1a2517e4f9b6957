"""Approvals against the real server: ``with_approval`` end to end (a second
thread, task or process approving), denial and expiry, an approval bound to
its exact call, ``wait_for_approval`` (woken by the resolution, running out,
polling in chunks, asking again across a restart), and the approver's
methods. Nothing is timed: waits are shown by what was asked and answered."""

from __future__ import annotations

import asyncio
import inspect
import os
import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterator, List

import pytest

import tamesdk
import tamesdk._http
from tamesdk import (
    Approval,
    ApprovalDeniedException,
    ApprovalRequiredException,
    ApprovalStatus,
    ApprovalTimeoutException,
    AsyncClient,
    Client,
    ConflictException,
    NotFoundException,
    PermissionDeniedException,
    PolicyViolationException,
    ValidationException,
    with_approval,
)

from .conftest import (
    KEYS,
    TAMESDK_CLI,
    TameServer,
    Traffic,
    pending_approval,
    start_server,
    watch,
)

#: How often a test looks again for something another thread or task did, and how many times.
LOOK_EVERY = 0.02
LOOKS = 1500

QUICK_EXPIRY_POLICY = """\
version: "quick-expiry"
default_action: deny
rules:
  - name: quick_approval
    tools: ["deploy*"]
    action: approve
    approval_ttl: 1
    reason: "Deploys need a yes within a second"
"""


def session_id(label: str) -> str:
    return f"{label}-{uuid.uuid4()}"


def awaited_approval(traffic: Traffic) -> str:
    """The id of the approval a client is waiting on, once its long poll has been sent."""
    for _ in range(LOOKS):
        for request in list(traffic.requests):
            found = re.match(r"GET /api/v1/approvals/([^/?]+)\?wait=", request)
            if found:
                return found.group(1)
        traffic.sent.wait(LOOK_EVERY)
        traffic.sent.clear()
    pytest.fail(f"the client never waited on an approval: {traffic.requests}")


async def awaited_approval_async(traffic: Traffic) -> str:
    for _ in range(LOOKS):
        for request in list(traffic.requests):
            found = re.match(r"GET /api/v1/approvals/([^/?]+)\?wait=", request)
            if found:
                return found.group(1)
        await asyncio.sleep(LOOK_EVERY)
    pytest.fail(f"the client never waited on an approval: {traffic.requests}")


def polls(traffic: Traffic) -> List[int]:
    """The ``wait`` of each long poll sent."""
    return [int(w) for r in traffic.requests for w in re.findall(r"\?wait=(\d+)$", r)]


@pytest.fixture(scope="module")
def quick_expiry(policy_server: Callable[[str], TameServer]) -> TameServer:
    """A server whose approvals of ``deploy`` expire after a second."""
    return policy_server(QUICK_EXPIRY_POLICY)


# ------------------------------------------------------------- with_approval


def test_with_approval_runs_the_call_once_another_key_approves(auth_server: TameServer) -> None:
    session = session_id("approve-e2e")
    url = auth_server.url
    with (
        Client(api_url=url, api_key=KEYS["agent"], session_id=session) as agent,
        Client(api_url=url, api_key=KEYS["approver"]) as approver,
    ):
        sent: List[str] = []

        @with_approval(approval_message="Mail to the CEO", client=agent, approval_timeout=60)
        def send_email(to: str, body: str = "hello") -> str:
            """Send one mail."""
            sent.append(to)
            return f"sent to {to}"

        def review() -> Approval:
            asked = pending_approval(approver, session)
            # The agent's key may not resolve it: not its role, and it asked.
            with pytest.raises(PermissionDeniedException):
                agent.approve(asked.id)
            assert asked.tool_name == "send_email" and sent == []
            assert asked.tool_args == {"to": "ceo@example.com", "body": "hello"}
            return approver.approve(asked.id, comment="go ahead")

        with ThreadPoolExecutor(1) as pool:
            reviewing = pool.submit(review)
            assert send_email("ceo@example.com") == "sent to ceo@example.com"
            approved = reviewing.result(timeout=60)

        assert sent == ["ceo@example.com"]
        assert send_email.__name__ == "send_email" and send_email.__doc__ == "Send one mail."
        assert list(inspect.signature(send_email).parameters) == ["to", "body"]
        entries = agent.get_session_logs()
        used = agent.get_approval(approved.id)
    # Asked, approved by the approver's key, then allowed once and run; the result is on the allow.
    assert [e["policy_decision"] for e in entries] == ["approve", "allow"]
    assert entries[1]["reason"] == f"Approved by {approved.resolved_by}: go ahead"
    assert entries[1]["execution_status"] == "success"
    assert (
        entries[0]["metadata"] == entries[1]["metadata"] == {"approval_message": "Mail to the CEO"}
    )
    assert approved.is_approved and approved.comment == "go ahead"
    assert used.is_used and used.consumed_log_id == entries[1]["id"]
    assert approved.usable and not used.usable
    assert used.requested_by != used.resolved_by
    assert [(h["kind"], h["decision"]) for h in used.history] == [
        ("decision", "approve"),
        ("approval", "approved"),
        ("decision", "allow"),
    ]


def test_the_key_that_asked_cannot_resolve(auth_server: TameServer) -> None:
    url = auth_server.url
    with (
        Client(api_url=url, api_key=KEYS["admin"]) as admin,
        Client(api_url=url, api_key=KEYS["approver"]) as approver,
        Client(api_url=url, api_key=KEYS["agent"]) as agent,
    ):
        # An admin key may both ask and resolve, but never its own approval.
        decision = admin.enforce("delete_file", {"path": "/home/u/report.txt"})
        assert decision.requires_approval and decision.approval_id
        for resolve in (admin.approve, admin.deny):
            with pytest.raises(PermissionDeniedException, match="key that asked") as refused:
                resolve(decision.approval_id)
            assert refused.value.status_code == 403
        # Agents neither list nor resolve, nor see another key's approvals.
        with pytest.raises(PermissionDeniedException):
            agent.list_approvals()
        with pytest.raises(NotFoundException):
            agent.get_approval(decision.approval_id)
        denied = approver.deny(decision.approval_id, comment="keep it")
        with pytest.raises(ApprovalDeniedException) as info:
            admin.wait_for_approval(decision.approval_id, timeout=5)
    assert denied.status is ApprovalStatus.DENIED and denied.resolved_by != denied.requested_by
    assert info.value.approval.comment == "keep it"


async def test_async_with_approval_approved_by_another_task(server: TameServer) -> None:
    session = session_id("approve-async")
    async with (
        AsyncClient(api_url=server.url, session_id=session) as agent,
        AsyncClient(api_url=server.url) as approver,
    ):
        traffic = watch(agent)
        deployed: List[str] = []

        @with_approval(client=agent, approval_timeout=60)
        async def deploy_service(version: str) -> str:
            deployed.append(version)
            return f"deployed {version}"

        async def review() -> Approval:
            approval_id = await awaited_approval_async(traffic)
            assert deployed == []
            return await approver.approve(approval_id, comment="ship it")

        assert inspect.iscoroutinefunction(deploy_service)
        result, approved = await asyncio.gather(deploy_service("v2"), review())
        entries = await agent.get_session_logs()
    assert result == "deployed v2" and deployed == ["v2"]
    assert approved.tool_args == {"version": "v2"} and approved.session_id == session
    assert [e["policy_decision"] for e in entries] == ["approve", "allow"]
    assert entries[1]["execution_status"] == "success"
    # Asked; one long poll, woken by the resolution; the call with its approval; its result.
    assert traffic.requests[:4] == [
        "POST /api/v1/enforce",
        f"GET /api/v1/approvals/{approved.id}?wait=60",
        "POST /api/v1/enforce",
        f"POST /api/v1/enforce/{session}/result?log_id={entries[1]['id']}",
    ]


async def test_async_with_approval_approved_by_another_process(auth_server: TameServer) -> None:
    session = session_id("approve-cli")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAME_")}
    env.update(TAME_API_URL=auth_server.url, TAME_API_KEY=KEYS["approver"])
    async with AsyncClient(
        api_url=auth_server.url, api_key=KEYS["agent"], session_id=session
    ) as agent:
        traffic = watch(agent)

        @with_approval(client=agent, approval_timeout=60)
        async def run_migration(name: str) -> str:
            return f"migrated {name}"

        async def review() -> str:
            approval_id = await awaited_approval_async(traffic)
            process = await asyncio.create_subprocess_exec(
                str(TAMESDK_CLI),
                "approvals",
                "approve",
                approval_id,
                "--comment",
                "from the shell",
                env=env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out, err = await process.communicate()
            assert process.returncode == 0, err.decode()
            return out.decode()

        result, printed = await asyncio.gather(run_migration("0042"), review())
        entries = await agent.get_session_logs()
    assert result == "migrated 0042"
    assert "status:" in printed and "approved" in printed and "from the shell" in printed
    assert entries[1]["reason"].endswith(": from the shell")


def test_a_blocking_client_waits_for_an_async_function(server: TameServer) -> None:
    session = session_id("approve-mixed")
    with (
        Client(api_url=server.url, session_id=session) as agent,
        Client(api_url=server.url) as approver,
    ):
        traffic = watch(agent)

        @with_approval(client=agent, approval_timeout=60)
        async def write_report(path: str) -> str:
            return f"wrote {path}"

        with ThreadPoolExecutor(1) as pool:
            reviewing = pool.submit(lambda: approver.approve(awaited_approval(traffic)))
            assert asyncio.run(write_report("/home/u/r.txt")) == "wrote /home/u/r.txt"
            assert reviewing.result(timeout=60).is_approved


def test_a_denial_raises_and_nothing_runs(server: TameServer) -> None:
    session = session_id("deny")
    with (
        Client(api_url=server.url, session_id=session) as agent,
        Client(api_url=server.url) as approver,
    ):
        traffic = watch(agent)
        ran: List[str] = []

        @with_approval(client=agent, approval_timeout=60)
        def delete_file(path: str) -> None:
            ran.append(path)

        with ThreadPoolExecutor(1) as pool:
            reviewing = pool.submit(
                lambda: approver.deny(awaited_approval(traffic), comment="not today")
            )
            with pytest.raises(ApprovalDeniedException) as info:
                delete_file("/home/u/thesis.tex")
            reviewing.result(timeout=60)
        entries = agent.get_session_logs()
    error = info.value
    assert isinstance(error, PolicyViolationException) and ran == []
    assert error.approval.status is ApprovalStatus.DENIED and error.approval.is_denied
    assert error.approval.comment == "not today" and error.approval.resolved_by
    assert "denied by" in str(error) and "not today" in str(error)
    assert error.decision.requires_approval and error.decision.approval_id == error.approval.id
    assert [e["policy_decision"] for e in entries] == ["approve"]


async def test_async_denial(server: TameServer) -> None:
    async with AsyncClient(api_url=server.url) as agent, AsyncClient(api_url=server.url) as other:
        traffic = watch(agent)

        @with_approval(client=agent, approval_timeout=60)
        async def send_invoice(amount: int) -> None:
            raise AssertionError("not reached")

        async def review() -> Approval:
            return await other.deny(await awaited_approval_async(traffic))

        raised, denied = await asyncio.gather(send_invoice(12), review(), return_exceptions=True)
    assert isinstance(raised, ApprovalDeniedException) and isinstance(denied, Approval)
    assert raised.approval.status is ApprovalStatus.DENIED is denied.status
    assert raised.approval.comment is None


def test_expiry_counts_as_denied(quick_expiry: TameServer) -> None:
    with Client(api_url=quick_expiry.url) as agent:
        ran: List[str] = []

        @with_approval(client=agent, approval_timeout=60)
        def deploy(version: str) -> None:
            ran.append(version)

        with pytest.raises(ApprovalDeniedException, match="expired") as info:
            deploy("v3")
        entries = agent.get_session_logs()
    assert ran == [] and info.value.approval.status is ApprovalStatus.EXPIRED
    assert info.value.approval.is_denied and not info.value.approval.is_approved
    assert [e["policy_decision"] for e in entries] == ["approve"]


async def test_async_wait_for_an_expiring_approval(quick_expiry: TameServer) -> None:
    async with AsyncClient(api_url=quick_expiry.url) as agent:
        decision = await agent.enforce("deploy", {"version": "v4"})
        assert decision.approval_id
        with pytest.raises(ApprovalDeniedException) as info:
            await agent.wait_for_approval(decision.approval_id, timeout=60)
        # An expired approval cannot be resolved any more.
        with pytest.raises(ConflictException, match="expired"):
            await agent.approve(decision.approval_id)
    assert info.value.approval.status is ApprovalStatus.EXPIRED
    assert info.value.decision.log_id == decision.log_id


def test_allow_and_deny_do_not_wait(server: TameServer) -> None:
    with Client(api_url=server.url) as agent:
        traffic = watch(agent)

        @with_approval(client=agent)
        def read_file(path: str) -> str:
            return "contents"

        assert read_file("/tmp/a") == "contents"
        with pytest.raises(PolicyViolationException) as denied:
            read_file("/etc/shadow")
    assert type(denied.value) is PolicyViolationException
    assert polls(traffic) == []


def test_no_answer_in_time_raises_and_the_approval_can_still_be_used(server: TameServer) -> None:
    with Client(api_url=server.url) as agent:
        traffic = watch(agent)
        ran: List[str] = []

        @with_approval(client=agent, approval_timeout=0)
        def execute_command(cmd: str) -> str:
            ran.append(cmd)
            return "done"

        with pytest.raises(ApprovalTimeoutException) as info:
            execute_command("make release")
        assert ran == [] and polls(traffic) == [0]  # one look, no wait
        error = info.value
        assert isinstance(error, ApprovalRequiredException) and error.timeout == 0
        assert error.approval.is_pending and "still pending" in str(error)
        # It stays pending: someone approves later, and the call can still run with it.
        agent.approve(error.approval.id, comment="later")
        assert agent.wait_for_approval(error.approval.id, timeout=0).is_approved
        decision = agent.enforce(
            "execute_command", {"cmd": "make release"}, approval_id=error.approval.id
        )
    assert decision.is_allowed and decision.reason.startswith("Approved by ")
    assert decision.reason.endswith(": later")


def test_the_configured_approval_timeout_is_the_default(server: TameServer) -> None:
    tamesdk.configure(api_url=server.url, approval_timeout=0)

    @with_approval
    def send_sms(to: str) -> None:
        raise AssertionError("not reached")

    with pytest.raises(ApprovalTimeoutException) as info:
        send_sms("+100")
    assert info.value.timeout == 0
    with pytest.raises(ValidationException, match="approval timeout"):
        with Client(api_url=server.url) as client:
            client.wait_for_approval(info.value.approval.id, timeout=-1)


# ------------------------------------------------------------- bound to the call


def test_an_approval_is_bound_to_its_call(server: TameServer) -> None:
    session = session_id("bound")
    call = {"to": "ceo@example.com", "subject": "Q3"}
    with Client(api_url=server.url, session_id=session) as client:
        decision = client.enforce("send_email", call)
        assert decision.requires_approval and decision.approval_id
        approval_id = decision.approval_id
        # Unknown: 404. Pending: it cannot be used yet (409).
        with pytest.raises(NotFoundException):
            client.enforce("send_email", call, approval_id="no-such-approval")
        with pytest.raises(ConflictException) as pending:
            client.enforce("send_email", call, approval_id=approval_id)
        assert pending.value.status_code == 409
        client.approve(approval_id, comment="only this one")  # open server: anyone may
        # Approved for this call, not for another: other arguments, session or tool are refused.
        other = {"to": "everyone@example.com", "subject": "Q3"}
        with pytest.raises(ValidationException, match="other arguments") as changed:
            client.enforce("send_email", other, approval_id=approval_id)
        assert changed.value.status_code == 422
        with pytest.raises(ValidationException):
            client.enforce("send_email", call, approval_id=approval_id, session_id=f"{session}-2")
        with pytest.raises(ValidationException):
            client.enforce("send_sms", call, approval_id=approval_id)
        # The same call is allowed, exactly once.
        allowed = client.enforce(
            "send_email", dict(reversed(list(call.items()))), approval_id=approval_id
        )
        with pytest.raises(ConflictException, match="already been used"):
            client.enforce("send_email", call, approval_id=approval_id)
        used = client.get_approval(approval_id)
        entries = client.get_session_logs()
    assert allowed.is_allowed and allowed.approval_id == approval_id
    assert used.is_used and used.consumed_log_id == allowed.log_id
    assert [e["policy_decision"] for e in entries] == ["approve", "allow"]


# ------------------------------------------------------------- wait_for_approval


def test_wait_for_approval_returns_once_resolved(server: TameServer) -> None:
    with Client(api_url=server.url) as agent, Client(api_url=server.url) as approver:
        decision = agent.enforce("write_file", {"path": "/home/u/a.txt", "content": "x"})
        assert decision.approval_id
        traffic = watch(agent)
        with ThreadPoolExecutor(1) as pool:
            reviewing = pool.submit(
                lambda: approver.approve(awaited_approval(traffic), comment="fine")
            )
            approval = agent.wait_for_approval(decision.approval_id, timeout=120)
            reviewing.result(timeout=60)
    assert (
        approval.is_approved and approval.comment == "fine" and approval.id == decision.approval_id
    )
    assert approval.resolved_at is not None and not approval.is_used
    # A single long poll, held for up to the whole timeout, answered by the resolution.
    assert polls(traffic) == [120] and traffic.statuses == [200]


def test_wait_for_approval_raises_when_time_runs_out(server: TameServer) -> None:
    with Client(api_url=server.url) as agent:
        decision = agent.enforce("run_backup", {"target": "s3"})
        assert decision.approval_id
        traffic = watch(agent)
        with pytest.raises(ApprovalTimeoutException) as info:
            agent.wait_for_approval(decision.approval_id, timeout=1)
        still = agent.get_approval(decision.approval_id)
    assert info.value.approval.is_pending and info.value.timeout == 1
    assert info.value.decision.approval_id == decision.approval_id
    assert info.value.decision.log_id == decision.log_id
    assert polls(traffic) and all(w == 1 for w in polls(traffic))
    assert still.is_pending


def test_a_long_wait_is_several_polls_of_at_most_the_servers_limit(
    server: TameServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert tamesdk._http.MAX_POLL_SECONDS == 300
    assert [tamesdk._http.poll_seconds(s) for s in (1000, 300, 299.2, 0.1, 0, -3)] == [
        300,
        300,
        300,
        1,
        0,
        0,
    ]
    # With the server's limit made one second, a long wait is a series of one-second polls.
    monkeypatch.setattr(tamesdk._http, "MAX_POLL_SECONDS", 1)
    with Client(api_url=server.url) as agent, Client(api_url=server.url) as approver:
        decision = agent.enforce("send_email", {"to": "a@example.com"})
        assert decision.approval_id
        traffic = watch(agent)

        def review() -> Approval:
            for _ in range(LOOKS):
                if len(polls(traffic)) >= 2:
                    return approver.approve(awaited_approval(traffic))
                traffic.sent.wait(LOOK_EVERY)
                traffic.sent.clear()
            pytest.fail("the waiter did not poll again")

        with ThreadPoolExecutor(1) as pool:
            reviewing = pool.submit(review)
            approval = agent.wait_for_approval(decision.approval_id, timeout=120)
            reviewing.result(timeout=60)
    assert approval.is_approved
    assert len(polls(traffic)) >= 2 and set(polls(traffic)) == {1}


async def test_async_wait_for_approval(server: TameServer) -> None:
    async with AsyncClient(api_url=server.url) as agent, AsyncClient(api_url=server.url) as other:
        decision = await agent.enforce("delete_file", {"path": "/home/u/b"})
        assert decision.approval_id
        traffic = watch(agent)

        async def review() -> Approval:
            return await other.approve(await awaited_approval_async(traffic), comment="ok")

        approval, resolved = await asyncio.gather(
            agent.wait_for_approval(decision.approval_id, timeout=120), review()
        )
        assert approval.is_approved and resolved.id == approval.id
        assert polls(traffic) == [120]
        # Pending and nobody answers: raised when the time runs out.
        another = await agent.enforce("delete_file", {"path": "/home/u/c"})
        assert another.approval_id
        with pytest.raises(ApprovalTimeoutException):
            await agent.wait_for_approval(another.approval_id, timeout=1)
        with pytest.raises(NotFoundException):
            await agent.wait_for_approval("no-such-approval", timeout=1)


@pytest.fixture
def restartable() -> Iterator[TameServer]:
    s = start_server()
    yield s
    s.stop()


def test_a_waiter_asks_again_across_a_server_restart(restartable: TameServer) -> None:
    with Client(api_url=restartable.url, retry_backoff=0.05) as agent:
        decision = agent.enforce("deploy", {"version": "v5"})
        assert decision.approval_id
        traffic = watch(agent, wait=True)

        def restart_then_approve() -> Approval:
            awaited_approval(traffic)
            restartable.restart()
            with Client(api_url=restartable.url) as approver:
                return approver.approve(decision.approval_id or "", comment="after the restart")

        with ThreadPoolExecutor(1) as pool:
            reviewing = pool.submit(restart_then_approve)
            approval = agent.wait_for_approval(decision.approval_id, timeout=120)
            reviewing.result(timeout=60)
    # The pending approval outlived the restart, and the waiter simply asked again.
    assert approval.is_approved and approval.comment == "after the restart"
    assert len(polls(traffic)) >= 2


# ------------------------------------------------------------- approvers


def test_list_approve_and_deny(auth_server: TameServer) -> None:
    session = session_id("approver-methods")
    url = auth_server.url
    with (
        Client(api_url=url, api_key=KEYS["agent"], session_id=session) as agent,
        Client(api_url=url, api_key=KEYS["approver"]) as approver,
    ):
        first = agent.enforce("send_email", {"to": "x@example.com"})
        second = agent.enforce("send_email", {"to": "y@example.com"})
        pending = [a.id for a in approver.list_approvals() if a.session_id == session]
        assert pending == [second.approval_id, first.approval_id]  # newest first
        approved = approver.approve(first.approval_id or "", comment="yes")
        denied = approver.deny(second.approval_id or "")
        with pytest.raises(ConflictException, match="already approved") as twice:
            approver.approve(first.approval_id or "")
        with pytest.raises(ConflictException, match="already denied"):
            approver.approve(second.approval_id or "")
        with pytest.raises(NotFoundException):
            approver.deny("no-such-approval")
        with pytest.raises(ValidationException, match="status must be"):
            approver.list_approvals(status="maybe")
        by_status = {
            status: [
                a.id for a in approver.list_approvals(status=status) if a.session_id == session
            ]
            for status in ("pending", "approved", "denied", "all")
        }
        assert [a.id for a in approver.list_approvals(status=None, limit=1)] != []
    assert twice.value.status_code == 409
    assert approved.status is ApprovalStatus.APPROVED and approved.comment == "yes"
    assert denied.status is ApprovalStatus.DENIED and denied.comment is None
    assert by_status["pending"] == []
    assert by_status["approved"] == [first.approval_id]
    assert by_status["denied"] == [second.approval_id]
    assert by_status["all"] == [second.approval_id, first.approval_id]
