"""Every exception and the answer it comes from, against the real server:
401, 403, 400, 413, 422, 404, 409, 429 (with Retry-After), 503, connection
refused, no answer in time, deny and approve; and which of them are retried,
counted in attempts and in the waits asked for (never timed)."""

from __future__ import annotations

import time
import uuid
from typing import Any, Dict, List, Tuple

import pytest

import tamesdk
from tamesdk import (
    ApprovalDeniedException,
    ApprovalRequiredException,
    ApprovalTimeoutException,
    AsyncClient,
    AuthenticationException,
    Client,
    ConflictException,
    ConnectionException,
    NotFoundException,
    PermissionDeniedException,
    PolicyViolationException,
    RateLimitException,
    TameSDKException,
    ValidationException,
)
from tamesdk.exceptions import from_response

from .conftest import TameServer, nested, watch


def test_every_exception_is_a_tame_sdk_exception() -> None:
    for cls in (
        PolicyViolationException,
        ApprovalRequiredException,
        ApprovalDeniedException,
        ApprovalTimeoutException,
        ConflictException,
        ConnectionException,
        AuthenticationException,
        PermissionDeniedException,
        ValidationException,
        NotFoundException,
        RateLimitException,
    ):
        assert issubclass(cls, TameSDKException)
    assert issubclass(PermissionDeniedException, AuthenticationException)
    # A denied or expired approval is a denial; a wait that runs out is still "approval required".
    assert issubclass(ApprovalDeniedException, PolicyViolationException)
    assert issubclass(ApprovalTimeoutException, ApprovalRequiredException)


def test_missing_key_is_401(auth_server: TameServer) -> None:
    with Client(api_url=auth_server.url) as client:
        with pytest.raises(AuthenticationException) as info:
            client.enforce("read_file", {"path": "/tmp/a"})
    assert type(info.value) is AuthenticationException
    assert info.value.status_code == 401 and info.value.code == "unauthorized"
    assert "missing credentials" in info.value.message


def test_wrong_key_is_401(auth_server: TameServer) -> None:
    with Client(api_url=auth_server.url, api_key="wrong-key-0123456789") as client:
        with pytest.raises(AuthenticationException, match="invalid API key"):
            client.get_policy_info()


def test_key_without_the_role_is_403(auth_server: TameServer) -> None:
    with Client(api_url=auth_server.url, api_key=auth_server.keys["approver"]) as client:
        with pytest.raises(PermissionDeniedException) as info:
            client.enforce("read_file", {"path": "/tmp/a"})
    assert info.value.status_code == 403 and "role" in info.value.message


def test_session_of_another_key_is_403(auth_server: TameServer) -> None:
    session = f"owned-{uuid.uuid4()}"
    with Client(api_url=auth_server.url, api_key=auth_server.keys["agent"]) as owner:
        assert owner.enforce("read_file", {"path": "/tmp/a"}, session_id=session).is_allowed
        assert len(owner.get_session_logs(session)) == 1
    with Client(api_url=auth_server.url, api_key=auth_server.keys["agent2"]) as other:
        with pytest.raises(PermissionDeniedException, match="another key"):
            other.enforce("read_file", {"path": "/tmp/a"}, session_id=session)
        # Reading it is refused as if it did not exist.
        with pytest.raises(NotFoundException):
            other.get_session_logs(session)


def test_valid_keys_work_on_every_method(auth_server: TameServer) -> None:
    with Client(api_url=auth_server.url, api_key=auth_server.keys["agent"]) as client:
        decision = client.enforce("read_file", {"path": "/tmp/a"})
        client.update_result(decision.session_id, decision.log_id, {"status": "success"})
        assert client.get_session_logs()[0]["execution_status"] == "success"
        assert client.get_session_summary()["total_calls"] == 1
        assert client.list_sessions()["total_count"] >= 1
        assert client.get_policy_info().rules_count == 8
        assert client.test_policy("read_file", {"path": "/tmp/a"})["decision"] == "allow"
        assert client.get_status()["auth"] == "required"


async def test_async_auth_errors(auth_server: TameServer) -> None:
    async with AsyncClient(api_url=auth_server.url) as client:
        with pytest.raises(AuthenticationException):
            await client.enforce("read_file")
    async with AsyncClient(api_url=auth_server.url, api_key=auth_server.keys["approver"]) as c:
        with pytest.raises(PermissionDeniedException):
            await c.enforce("read_file")


def test_wrong_fields_are_422(server: TameServer) -> None:
    with Client(api_url=server.url) as client:
        with pytest.raises(ValidationException) as info:
            client.enforce("")
        with pytest.raises(ValidationException, match="cost"):
            decision = client.enforce("read_file", {"path": "/tmp/a"})
            client.update_result(decision.session_id, decision.log_id, {"cost": -1})
    assert info.value.status_code == 422 and info.value.code == "invalid_request"
    assert "tool_name must not be empty" in info.value.message


def test_unreadable_json_is_400(server: TameServer) -> None:
    # NaN is not JSON: the server cannot read the body.
    with Client(api_url=server.url) as client:
        with pytest.raises(ValidationException) as info:
            client.enforce("read_file", {"size": float("nan")})
    assert info.value.status_code == 400 and info.value.code == "bad_request"


def test_a_request_json_cannot_hold_is_refused_before_it_is_sent(server: TameServer) -> None:
    session = f"encode-{uuid.uuid4()}"
    loop: Dict[str, Any] = {}
    loop["self"] = loop
    cases: List[Tuple[Dict[str, Any], str]] = [
        ({"config": nested(3000)}, "nested too deeply"),
        ({"config": loop}, "Circular reference"),
        ({"options": {(1, 2): "x"}}, "keys must be str"),
        # JSON writes 1 as "1", and the server keeps the last of two equal keys:
        # the policy would see /tmp/ok while the tool gets /etc/shadow as well.
        ({"options": {1: "/etc/shadow", "1": "/tmp/ok"}}, "the keys 1 and '1' of one mapping"),
        ({"options": {"true": "/tmp/ok", True: "/etc/shadow"}}, "would both be 'true'"),
    ]
    ran: List[Any] = []
    with Client(api_url=server.url, session_id=session, failure_mode="fail_open") as client:
        traffic = watch(client)

        @tamesdk.enforce_policy(client=client)
        def read_file(path: str, options: Any = None) -> None:
            ran.append(path)

        for args, message in cases:
            with pytest.raises(ValidationException, match=message) as info:
                client.enforce("read_file", args)
            assert info.value.status_code is None
            with pytest.raises(ValidationException, match=message):
                read_file("/tmp/a", args)
    assert ran == [] and traffic.requests == [] and server.decisions(session) == []


def test_body_over_the_limit_is_413(server: TameServer) -> None:
    with Client(api_url=server.url) as client:
        with pytest.raises(ValidationException) as info:
            client.enforce("read_file", {"content": "x" * (2 * 1024 * 1024)})
    assert info.value.status_code == 413


def test_deny_and_approve_carry_the_decision(server: TameServer) -> None:
    with Client(api_url=server.url) as client:
        with pytest.raises(PolicyViolationException) as denied:
            client.execute_tool("read_file", {"path": "/etc/passwd"}, executor=lambda t, a: None)
        with pytest.raises(ApprovalRequiredException) as approval:
            client.execute_tool("delete_file", {"path": "/home/u/x"}, executor=lambda t, a: None)
    assert denied.value.decision.is_denied
    assert denied.value.decision.reason == "System files are not accessible"
    assert "denied by policy" in str(denied.value)
    assert approval.value.decision.requires_approval
    assert approval.value.decision.log_id and approval.value.status_code is None


def test_rate_limit_is_429_with_retry_after(limited_server: TameServer) -> None:
    with Client(api_url=limited_server.url, max_retries=3) as client:
        traffic = watch(client)
        calls = 0
        with pytest.raises(RateLimitException) as info:
            for _ in range(10):
                calls += 1
                client.test_policy("read_file", {"path": "/tmp/a"})
    assert info.value.status_code == 429 and info.value.code == "rate_limited"
    assert info.value.retry_after is not None and info.value.retry_after >= 1
    # A 429 is not retried behind the caller's back: one request per call, no wait asked for.
    assert len(traffic.requests) == calls and traffic.statuses[-1] == 429
    assert traffic.statuses.count(429) == 1 and traffic.delays == []
    time.sleep(info.value.retry_after)
    with Client(api_url=limited_server.url) as client:
        assert client.test_policy("read_file", {"path": "/tmp/a"})["decision"] == "allow"


async def test_async_rate_limit(limited_server: TameServer) -> None:
    async with AsyncClient(api_url=limited_server.url, max_retries=3) as client:
        traffic = watch(client)
        with pytest.raises(RateLimitException) as info:
            for _ in range(10):
                await client.health()
                await client.get_status()
    assert info.value.retry_after is not None and info.value.retry_after >= 1
    assert traffic.statuses.count(429) == 1 and traffic.delays == []


def test_connection_refused_is_retried_with_backoff_then_raised(dead_url: str) -> None:
    with Client(api_url=dead_url, max_retries=2, retry_backoff=0.1) as client:
        traffic = watch(client)
        with pytest.raises(ConnectionException, match="cannot connect") as info:
            client.enforce("read_file", {"path": "/tmp/a"})
    assert info.value.status_code is None
    # Three attempts, with waits of 0.1 s and then 0.2 s asked for between them.
    assert traffic.requests == ["POST /api/v1/enforce"] * 3 and traffic.statuses == []
    assert traffic.delays == [0.1, 0.2]


async def test_async_connection_refused(dead_url: str) -> None:
    async with AsyncClient(api_url=dead_url, max_retries=1, retry_backoff=0.1) as client:
        traffic = watch(client)
        with pytest.raises(ConnectionException):
            await client.get_policy_info()
    assert traffic.requests == ["GET /api/v1/policy/current"] * 2 and traffic.delays == [0.1]


def test_backoff_doubles_up_to_its_ceiling(dead_url: str) -> None:
    with Client(api_url=dead_url, max_retries=6, retry_backoff=1.0) as client:
        traffic = watch(client)
        with pytest.raises(ConnectionException):
            client.health()
    assert traffic.delays == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0] and len(traffic.requests) == 7


def test_503_is_retried_with_backoff_then_raised(unavailable_server: TameServer) -> None:
    # A session this server has not loaded yet is answered 503 before anything is decided.
    before = unavailable_server.decision_count()
    once = f"unloaded-{uuid.uuid4()}"
    with Client(api_url=unavailable_server.url, max_retries=0) as client:
        traffic = watch(client)
        with pytest.raises(ConnectionException) as error:
            client.enforce("read_file", {"path": "/tmp/a"}, session_id=once)
    assert error.value.status_code == 503 and "unavailable" in error.value.message
    assert "nothing was decided" in error.value.message  # the server's own words
    assert traffic.statuses == [503] and traffic.delays == []
    retried = f"unloaded-{uuid.uuid4()}"
    with Client(api_url=unavailable_server.url, max_retries=2, retry_backoff=0.2) as client:
        traffic = watch(client)
        with pytest.raises(ConnectionException) as error:
            client.enforce("read_file", {"path": "/tmp/a"}, session_id=retried)
    assert error.value.status_code == 503
    # Three attempts, with waits of 0.2 s and 0.4 s asked for between them.
    assert traffic.requests == ["POST /api/v1/enforce"] * 3
    assert traffic.statuses == [503, 503, 503] and traffic.delays == [0.2, 0.4]
    # Nothing was recorded, by any of the four refused requests.
    assert unavailable_server.decisions(once) == [] and unavailable_server.decisions(retried) == []
    assert unavailable_server.decision_count() == before


async def test_async_503_is_retried_then_raised(unavailable_server: TameServer) -> None:
    before = unavailable_server.decision_count()
    session = f"unloaded-{uuid.uuid4()}"
    async with AsyncClient(
        api_url=unavailable_server.url, max_retries=1, retry_backoff=0.2
    ) as client:
        traffic = watch(client)
        with pytest.raises(ConnectionException) as error:
            await client.enforce("read_file", {"path": "/tmp/a"}, session_id=session)
    assert error.value.status_code == 503
    assert traffic.statuses == [503, 503] and traffic.delays == [0.2]
    assert unavailable_server.decisions(session) == []
    assert unavailable_server.decision_count() == before


def test_no_answer_in_time_is_a_connection_exception_and_not_retried(silent_url: str) -> None:
    with Client(api_url=silent_url, timeout=0.3, max_retries=3, retry_backoff=1.0) as client:
        traffic = watch(client)
        with pytest.raises(ConnectionException, match=r"no answer within 0\.3 s"):
            client.enforce("read_file", {"path": "/tmp/a"})
    # The server may have decided: the request is not sent again.
    assert traffic.requests == ["POST /api/v1/enforce"] and traffic.delays == []


async def test_async_no_answer_in_time(silent_url: str) -> None:
    async with AsyncClient(api_url=silent_url, timeout=0.3, max_retries=3) as client:
        traffic = watch(client)
        with pytest.raises(ConnectionException, match="no answer"):
            await client.enforce("read_file", {"path": "/tmp/a"})
    assert traffic.requests == ["POST /api/v1/enforce"] and traffic.delays == []


def test_a_decision_is_never_sent_twice(server: TameServer) -> None:
    session = f"once-{uuid.uuid4()}"
    tamesdk.configure(api_url=server.url, session_id=session, max_retries=5)

    @tamesdk.enforce_policy
    def read_file(path: str) -> str:
        return "x"

    with pytest.raises(PolicyViolationException):
        read_file("/etc/passwd")
    assert read_file("/tmp/a") == "x"
    assert [r["decision"] for r in server.decisions(session)] == ["deny", "allow"]


def test_mapping_of_other_statuses() -> None:
    body = {"error": {"code": "conflict", "message": "already resolved"}}
    error = from_response(409, body)
    assert type(error) is ConflictException and error.status_code == 409
    assert error.code == "conflict" and "already resolved" in error.message
    assert type(from_response(500, None)) is TameSDKException
    assert from_response(429, None, "not-a-number").retry_after is None  # type: ignore[attr-defined]
    assert isinstance(from_response(503, None), ConnectionException)
