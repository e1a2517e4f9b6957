"""Successful answers the SDK cannot act on: a decision with a field missing,
of another type, or a value it does not know; an array where an object
belongs; JSON nested too deeply to read. A stand-in server gives the real
server's own answer with one thing broken. Each raises a TameSDKException
saying what is wrong, and nothing runs, even with fail_open."""

from __future__ import annotations

import json
from typing import Any, Callable, Dict, List

import httpx
import pytest

from tamesdk import (
    AsyncClient,
    Client,
    ConnectionException,
    TameSDKException,
    enforce_policy,
)

from .conftest import Answering, TameServer


def real_decision(server: TameServer) -> Dict[str, Any]:
    """An allow, as the real server answers it."""
    response = httpx.post(
        f"{server.url}/api/v1/enforce",
        json={"tool_name": "read_file", "tool_args": {"path": "/tmp/a"}},
    )
    assert response.status_code == 200 and response.json()["decision"] == "allow"
    return dict(response.json())


def without(key: str) -> Callable[[Dict[str, Any]], str]:
    return lambda d: json.dumps({k: v for k, v in d.items() if k != key})


def changed(key: str, value: Any) -> Callable[[Dict[str, Any]], str]:
    return lambda d: json.dumps({**d, key: value})


#: The real answer broken one way (as the body's text), and what the SDK says about it.
BROKEN: Dict[str, Any] = {
    "decision in capitals": (
        changed("decision", "ALLOW"),
        "'decision' is 'ALLOW', not one of 'allow', 'deny', 'approve'",
    ),
    "no decision": (without("decision"), "no 'decision'"),
    "null decision": (changed("decision", None), "no 'decision'"),
    "decision a boolean": (changed("decision", True), "'decision' is True, not a string"),
    "an array": (lambda d: json.dumps([d]), "POST /api/v1/enforce with an array, not an object"),
    "a string": (lambda d: json.dumps("allow"), "with a string, not an object"),
    "garbage timestamp": (
        changed("timestamp", "garbage"),
        "'timestamp' is 'garbage', not an RFC 3339 time with an offset",
    ),
    "no timestamp": (without("timestamp"), "no 'timestamp'"),
    "timestamp without an offset": (
        changed("timestamp", "2026-11-23T21:01:13.123456"),
        "not an RFC 3339 time with an offset",
    ),
    "null session id": (changed("session_id", None), "no 'session_id'"),
    "empty log id": (changed("log_id", ""), "'log_id' is empty"),
    "metadata an array": (changed("metadata", [1]), r"'metadata' is \[1\], not an object"),
    "rule name a number": (changed("rule_name", 3), "'rule_name' is 3, not a string"),
    "nested too deeply to read": (
        lambda d: "[" * 100_000 + "]" * 100_000,
        "without JSON it can read",
    ),
}


def test_the_real_answer_served_unbroken_is_acted_on(
    server: TameServer, answering: Answering
) -> None:
    # The stand-in is not the problem: served as is, the real answer lets the tool run.
    answering.body = json.dumps(real_decision(server))
    ran: List[str] = []
    with Client(api_url=answering.url) as client:

        @enforce_policy(client=client)
        def read_file(path: str) -> str:
            ran.append(path)
            return "read"

        assert read_file("/tmp/a") == "read"
    assert ran == ["/tmp/a"]


@pytest.mark.parametrize("case", BROKEN)
def test_a_malformed_decision_raises_and_nothing_runs(
    server: TameServer, answering: Answering, case: str
) -> None:
    broken, message = BROKEN[case]
    answering.body = broken(real_decision(server))
    ran: List[str] = []
    with Client(api_url=answering.url, failure_mode="fail_open", max_retries=3) as client:

        @enforce_policy(client=client)
        def read_file(path: str) -> str:
            ran.append(path)
            return "read"

        with pytest.raises(TameSDKException, match=message) as info:
            read_file("/tmp/a")
        with pytest.raises(TameSDKException, match=message):
            client.enforce("read_file", {"path": "/tmp/a"})
    assert not isinstance(info.value, ConnectionException)  # an answer: never failed open
    assert ran == []
    # Each asked once, not again: the server may have recorded a decision.
    assert answering.requests == ["POST /api/v1/enforce"] * 2


@pytest.mark.parametrize("case", BROKEN)
async def test_async_a_malformed_decision_raises_and_nothing_runs(
    server: TameServer, answering: Answering, case: str
) -> None:
    broken, message = BROKEN[case]
    answering.body = broken(real_decision(server))
    ran: List[str] = []
    async with AsyncClient(api_url=answering.url, failure_mode="fail_open") as client:

        @enforce_policy(client=client)
        async def read_file(path: str) -> str:
            ran.append(path)
            return "read"

        with pytest.raises(TameSDKException, match=message) as info:
            await read_file("/tmp/a")
    assert not isinstance(info.value, ConnectionException)
    assert ran == []


def test_other_answers_of_the_wrong_shape(server: TameServer, answering: Answering) -> None:
    with Client(api_url=server.url) as real:
        approval_id = real.enforce("send_email", {"to": "a@example.com"}).approval_id
        assert approval_id
        approval = httpx.get(f"{server.url}/api/v1/approvals/{approval_id}").json()
        policy = httpx.get(f"{server.url}/api/v1/policy/current").json()
    with Client(api_url=answering.url, approval_timeout=5) as client:
        answering.body = json.dumps({**approval, "status": "APPROVED"})
        with pytest.raises(TameSDKException, match="'status' is 'APPROVED', not one of"):
            client.wait_for_approval(approval_id)
        answering.body = json.dumps({k: v for k, v in approval.items() if k != "id"})
        with pytest.raises(TameSDKException, match="malformed approval from the server: no 'id'"):
            client.get_approval(approval_id)
        answering.body = json.dumps({**policy, "rules_count": "seven"})
        with pytest.raises(TameSDKException, match="'rules_count' is 'seven', not a whole number"):
            client.get_policy_info()
        answering.body = json.dumps([approval])
        with pytest.raises(TameSDKException, match="with an array, not an object"):
            client.list_approvals()
        with pytest.raises(TameSDKException, match="with an array, not an object"):
            client.health()
        answering.body = json.dumps({"approvals": ["x"]})
        with pytest.raises(TameSDKException, match="approval from the server: 'x' is not an"):
            client.list_approvals()
        answering.body = json.dumps({"0": approval})
        with pytest.raises(TameSDKException, match="with an object, not an array"):
            client.get_session_logs("s")
