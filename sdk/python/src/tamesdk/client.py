"""The clients: :class:`Client` (blocking) and :class:`AsyncClient` (asyncio),
with the same methods. Each holds one connection pool, a session id, and its
configuration; the decisions, retries and failure modes are the same in both.
"""

from __future__ import annotations

import abc
import asyncio
import inspect
import json
import logging
import time
import uuid
from typing import Any, Awaitable, Callable, Dict, List, Mapping, Optional, Union
from urllib.parse import quote

import httpx

from . import _http
from .config import FAIL_OPEN, Config, get_config
from .exceptions import (
    ApprovalDeniedException,
    ApprovalRequiredException,
    ApprovalTimeoutException,
    ConnectionException,
    PolicyViolationException,
    TameSDKException,
    ValidationException,
)
from .models import Approval, EnforcementDecision, PolicyInfo, ToolResult

logger = logging.getLogger("tamesdk")

#: Results whose JSON is longer than this are reported as a shortened text.
MAX_RESULT_CHARS = 4096

Executor = Callable[[str, Dict[str, Any]], Any]
ResultLike = Union[ToolResult, Mapping[str, Any], Any]


def is_async_callable(fn: Any) -> bool:
    """True for a coroutine function, or an object whose ``__call__`` is one."""
    if inspect.iscoroutinefunction(fn):
        return True
    return callable(fn) and inspect.iscoroutinefunction(fn.__call__)


def preview(value: Any) -> Any:
    """A result as it is reported: itself when it is small JSON, else a shortened text."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError, RecursionError):
        try:
            text = repr(value)
        except Exception as e:
            # The tool has run: showing its result must not fail the call.
            text = f"<{type(value).__name__} that cannot be shown: {type(e).__name__}>"
    else:
        if len(text) <= MAX_RESULT_CHARS:
            return value
    return text if len(text) <= MAX_RESULT_CHARS else text[:MAX_RESULT_CHARS] + "…"


def _result_body(result: ResultLike) -> Dict[str, Any]:
    if isinstance(result, ToolResult):
        return result.to_dict()
    if isinstance(result, Mapping):
        return dict(result)
    return {"result": result}


class _ClientBase(abc.ABC):
    """Configuration, session and the pieces of a request both clients build alike."""

    def __init__(
        self,
        api_url: Optional[str] = None,
        api_key: Optional[str] = None,
        session_id: Optional[str] = None,
        agent_id: Optional[str] = None,
        user_id: Optional[str] = None,
        metadata: Optional[Dict[str, Any]] = None,
        timeout: Optional[float] = None,
        max_retries: Optional[int] = None,
        retry_backoff: Optional[float] = None,
        approval_timeout: Optional[float] = None,
        raise_on_deny: Optional[bool] = None,
        raise_on_approve: Optional[bool] = None,
        bypass_mode: Optional[bool] = None,
        failure_mode: Optional[str] = None,
        config: Optional[Config] = None,
    ) -> None:
        base = config if config is not None else get_config()
        #: The settings this client uses: ``config`` (or the global one) with the arguments given.
        self.config: Config = base.replace(
            api_url=api_url,
            api_key=api_key,
            session_id=session_id,
            agent_id=agent_id,
            user_id=user_id,
            metadata={**base.metadata, **metadata} if metadata else None,
            timeout=timeout,
            max_retries=max_retries,
            retry_backoff=retry_backoff,
            approval_timeout=approval_timeout,
            raise_on_deny=raise_on_deny,
            raise_on_approve=raise_on_approve,
            bypass_mode=bypass_mode,
            failure_mode=failure_mode,
        )
        #: Where this client's decisions are recorded: the configured session, or a new one.
        self.session_id: str = self.config.session_id or str(uuid.uuid4())
        if self.config.bypass_mode:
            logger.warning(
                "tamesdk BYPASS MODE is on: no policy is enforced and nothing is recorded"
            )
        self._open()

    @abc.abstractmethod
    def _open(self) -> None:
        """Create the connection pool."""

    def _enforce_body(
        self,
        tool_name: str,
        tool_args: Dict[str, Any],
        session_id: Optional[str],
        agent_id: Optional[str],
        user_id: Optional[str],
        metadata: Optional[Mapping[str, Any]],
        approval_id: Optional[str] = None,
    ) -> Dict[str, Any]:
        return _http.drop_none(
            {
                "tool_name": tool_name,
                "tool_args": tool_args,
                "session_id": session_id or self.session_id,
                "agent_id": agent_id or self.config.agent_id,
                "user_id": user_id or self.config.user_id,
                "metadata": {**self.config.metadata, **(metadata or {})},
                "approval_id": approval_id,
            }
        )

    def _bypassed(
        self, tool_name: str, tool_args: Dict[str, Any], session_id: Optional[str]
    ) -> EnforcementDecision:
        logger.warning("tamesdk BYPASS MODE: %s allowed without asking the policy", tool_name)
        return EnforcementDecision.local_allow(
            session_id or self.session_id, tool_name, tool_args, "bypass mode: policy not checked"
        )

    def _unreachable(
        self,
        error: ConnectionException,
        tool_name: str,
        tool_args: Dict[str, Any],
        session_id: Optional[str],
    ) -> EnforcementDecision:
        """fail_open: allow (with a warning); fail_closed: raise."""
        if self.config.failure_mode != FAIL_OPEN:
            raise error
        logger.warning("tamesdk fail_open: %s allowed without a decision: %s", tool_name, error)
        return EnforcementDecision.local_allow(
            session_id or self.session_id,
            tool_name,
            tool_args,
            f"fail_open: the server gave no decision ({error})",
        )

    def _may_run(
        self,
        decision: EnforcementDecision,
        raise_on_deny: Optional[bool],
        raise_on_approve: Optional[bool],
    ) -> bool:
        """Whether the tool may run; raises for a deny or approve when asked to."""
        if decision.is_allowed:
            return True
        if decision.is_denied:
            if self.config.raise_on_deny if raise_on_deny is None else raise_on_deny:
                raise PolicyViolationException(decision)
        elif self.config.raise_on_approve if raise_on_approve is None else raise_on_approve:
            raise ApprovalRequiredException(decision)
        return False

    def _approval_limit(self, timeout: Optional[float]) -> float:
        limit = self.config.approval_timeout if timeout is None else timeout
        if isinstance(limit, bool) or not isinstance(limit, (int, float)) or limit < 0:
            raise ValidationException(
                f"the approval timeout must be a number of seconds, 0 or more, not {limit!r}"
            )
        return float(limit)

    @staticmethod
    def _settled(
        approval: Approval,
        decision: Optional[EnforcementDecision],
        limit: float,
        remaining: float,
    ) -> bool:
        """True once approved; raises when denied or expired, or when no time
        is left; False to wait again."""
        if approval.is_approved:
            return True
        if approval.is_denied:
            raise ApprovalDeniedException(approval, decision)
        if remaining <= 0:
            raise ApprovalTimeoutException(approval, limit, decision)
        return False

    @staticmethod
    def _approval_path(approval_id: str, action: str = "") -> str:
        return f"/api/v1/approvals/{quote(approval_id, safe='')}{action}"

    @staticmethod
    def _approvals_params(status: Optional[str], limit: Optional[int]) -> Dict[str, Any]:
        return _http.drop_none({"status": None if status == "all" else status, "limit": limit})

    @staticmethod
    def _asked(decision: EnforcementDecision) -> str:
        """The approval an ``approve`` decision created (without one, nothing to wait for)."""
        if not decision.approval_id:
            raise ApprovalRequiredException(decision)
        logger.info(
            "tamesdk: %s waits for approval %s (%s)",
            decision.tool_name,
            decision.approval_id,
            decision.reason,
        )
        return decision.approval_id

    @staticmethod
    def _outcome(started: float, error: Optional[BaseException], value: Any = None) -> ToolResult:
        elapsed = round((time.perf_counter() - started) * 1000.0, 3)
        if error is not None:
            return ToolResult(
                status="error",
                error=f"{type(error).__name__}: {error}",
                execution_time_ms=elapsed,
            )
        return ToolResult(status="success", result=preview(value), execution_time_ms=elapsed)

    def _sessions_params(
        self, page: int, page_size: int, agent_id: Optional[str], user_id: Optional[str]
    ) -> Dict[str, Any]:
        return _http.drop_none(
            {"page": page, "page_size": page_size, "agent_id": agent_id, "user_id": user_id}
        )


class Client(_ClientBase):
    """Blocking client for policy decisions, result reports and reads.

    Arguments override the global configuration (:func:`tamesdk.configure`);
    ``metadata`` is added to the configured metadata and sent with every
    decision. Use it as a context manager, or call :meth:`close`.
    """

    _http: httpx.Client
    #: How the client waits before a retry (replaceable, to count the waits).
    _sleep: Callable[[float], None] = staticmethod(time.sleep)

    def _open(self) -> None:
        self._http = httpx.Client(
            base_url=self.config.api_url,
            headers=_http.headers(self.config),
            timeout=_http.timeout(self.config),
            limits=_http.limits(),
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def _request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Optional[Dict[str, Any]] = None,
        timeout: Optional[httpx.Timeout] = None,
        expect: type = dict,
    ) -> Any:
        content, extra = _http.encode(body)
        attempt = 0
        while True:
            try:
                response = self._http.request(
                    method,
                    path,
                    content=content,
                    params=params,
                    headers=extra,
                    timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
                )
            except httpx.TransportError as e:
                if _http.retryable(e) and attempt < self.config.max_retries:
                    self._sleep(_http.backoff(self.config, attempt))
                    attempt += 1
                    continue
                raise _http.connection_error(self.config, e) from e
            if response.status_code == 503 and attempt < self.config.max_retries:
                self._sleep(_http.backoff(self.config, attempt))
                attempt += 1
                continue
            return _http.result(response, expect)

    def enforce(
        self,
        tool_name: str,
        tool_args: Optional[Mapping[str, Any]] = None,
        *,
        session_id: Optional[str] = None,
        agent_id: Optional[str] = None,
        user_id: Optional[str] = None,
        metadata: Optional[Mapping[str, Any]] = None,
        approval_id: Optional[str] = None,
    ) -> EnforcementDecision:
        """Ask the policy about a tool call; the decision is recorded.

        Returns the decision whatever it is (it does not raise on deny or
        approve). Without an answer from the server it raises
        ConnectionException, or with ``fail_open`` returns a local allow.

        With ``approval_id``, an approved approval of exactly this call (same
        tool, arguments and session) turns it into an ``allow``, once. Another
        call raises ValidationException (422); an approval that is pending,
        denied, expired or already used, ConflictException (409); an unknown
        one, NotFoundException.
        """
        args = dict(tool_args or {})
        if self.config.bypass_mode:
            return self._bypassed(tool_name, args, session_id)
        body = self._enforce_body(
            tool_name, args, session_id, agent_id, user_id, metadata, approval_id
        )
        try:
            data = self._request("POST", "/api/v1/enforce", body=body)
        except ConnectionException as e:
            return self._unreachable(e, tool_name, args, session_id)
        return EnforcementDecision.from_response(data, tool_name, args)

    def execute_tool(
        self,
        tool_name: str,
        tool_args: Optional[Mapping[str, Any]] = None,
        executor: Optional[Executor] = None,
        *,
        session_id: Optional[str] = None,
        metadata: Optional[Mapping[str, Any]] = None,
        raise_on_deny: Optional[bool] = None,
        raise_on_approve: Optional[bool] = None,
    ) -> Any:
        """Enforce, run ``executor(tool_name, tool_args)`` if allowed, report its
        result or exception with its duration, and return what it returned.

        Deny and approve raise (unless turned off, in which case the executor
        does not run and None is returned). Without an executor, returns the
        decision. With an async executor, returns a coroutine to await.
        """
        args = dict(tool_args or {})
        if executor is None:
            decision = self.enforce(tool_name, args, session_id=session_id, metadata=metadata)
            self._may_run(decision, raise_on_deny, raise_on_approve)
            return decision
        run = executor
        guard = self._guarded_async if is_async_callable(executor) else self._guarded
        return guard(
            tool_name,
            args,
            lambda: run(tool_name, args),
            session_id=session_id,
            metadata=metadata,
            raise_on_deny=raise_on_deny,
            raise_on_approve=raise_on_approve,
        )

    def _guarded(
        self,
        tool_name: str,
        tool_args: Dict[str, Any],
        call: Callable[[], Any],
        *,
        session_id: Optional[str] = None,
        metadata: Optional[Mapping[str, Any]] = None,
        raise_on_deny: Optional[bool] = None,
        raise_on_approve: Optional[bool] = None,
        await_approval: bool = False,
        approval_timeout: Optional[float] = None,
    ) -> Any:
        decision = self.enforce(tool_name, tool_args, session_id=session_id, metadata=metadata)
        if await_approval and decision.requires_approval:
            decision = self._run_approved(decision, approval_timeout, metadata)
        if not self._may_run(decision, raise_on_deny, raise_on_approve):
            return None
        started = time.perf_counter()
        try:
            value = call()
        except Exception as e:
            self._report_quietly(decision, self._outcome(started, e))
            raise
        self._report_quietly(decision, self._outcome(started, None, value))
        return value

    async def _guarded_async(
        self,
        tool_name: str,
        tool_args: Dict[str, Any],
        call: Callable[[], Any],
        *,
        session_id: Optional[str] = None,
        metadata: Optional[Mapping[str, Any]] = None,
        raise_on_deny: Optional[bool] = None,
        raise_on_approve: Optional[bool] = None,
        await_approval: bool = False,
        approval_timeout: Optional[float] = None,
    ) -> Any:
        """As ``_guarded`` for an async call; the blocking requests run in a thread."""
        decision = await asyncio.to_thread(
            self.enforce, tool_name, tool_args, session_id=session_id, metadata=metadata
        )
        if await_approval and decision.requires_approval:
            decision = await asyncio.to_thread(
                self._run_approved, decision, approval_timeout, metadata
            )
        if not self._may_run(decision, raise_on_deny, raise_on_approve):
            return None
        started = time.perf_counter()
        try:
            value = call()
            if inspect.isawaitable(value):
                value = await value
        except Exception as e:
            await asyncio.to_thread(self._report_quietly, decision, self._outcome(started, e))
            raise
        await asyncio.to_thread(self._report_quietly, decision, self._outcome(started, None, value))
        return value

    def _run_approved(
        self,
        decision: EnforcementDecision,
        approval_timeout: Optional[float],
        metadata: Optional[Mapping[str, Any]],
    ) -> EnforcementDecision:
        """Wait for the approval an ``approve`` decision created; once approved,
        present it with the same call, which the server allows once."""
        approval_id = self._asked(decision)
        self._wait(approval_id, approval_timeout, decision)
        return self.enforce(
            decision.tool_name,
            decision.tool_args,
            session_id=decision.session_id,
            metadata=metadata,
            approval_id=approval_id,
        )

    def _wait(
        self,
        approval_id: str,
        timeout: Optional[float],
        decision: Optional[EnforcementDecision] = None,
    ) -> Approval:
        limit = self._approval_limit(timeout)
        deadline = time.monotonic() + limit
        path = self._approval_path(approval_id)
        failures = 0
        while True:
            wait = _http.poll_seconds(deadline - time.monotonic())
            try:
                data = self._request(
                    "GET",
                    path,
                    params={"wait": wait},
                    timeout=_http.poll_timeout(self.config, wait),
                )
            except ConnectionException:
                # Only a read: ask again (a restarted server still has the
                # approval) while time is left.
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise
                self._sleep(min(remaining, _http.backoff(self.config, failures)))
                failures += 1
                continue
            failures = 0
            approval = Approval.from_response(data)
            if self._settled(approval, decision, limit, deadline - time.monotonic()):
                return approval

    def wait_for_approval(self, approval_id: str, timeout: Optional[float] = None) -> Approval:
        """Block until a human resolves approval ``approval_id``; return it once approved.

        Long-polls the server (each request held at most 300 s, asked again
        until ``timeout``, default the configuration's ``approval_timeout``),
        so the answer arrives as soon as it is given. Raises
        ApprovalDeniedException when it is denied or expires, and
        ApprovalTimeoutException when ``timeout`` passes first (it stays
        pending, and may be waited for again). The agent key that asked may
        wait on its own approvals.
        """
        return self._wait(approval_id, timeout)

    def get_approval(self, approval_id: str) -> Approval:
        """An approval as it stands now, with its ``history``."""
        return Approval.from_response(self._request("GET", self._approval_path(approval_id)))

    def list_approvals(
        self, status: Optional[str] = "pending", limit: Optional[int] = None
    ) -> List[Approval]:
        """Approvals, newest first (an ``approver`` or ``admin`` key): those
        with ``status`` (``pending``, ``approved``, ``denied``, ``expired``),
        or all of them with ``"all"`` or None; at most ``limit`` (server
        default 100, at most 1000)."""
        data = self._request(
            "GET", "/api/v1/approvals", params=self._approvals_params(status, limit)
        )
        return [Approval.from_response(a) for a in data.get("approvals") or []]

    def approve(self, approval_id: str, comment: Optional[str] = None) -> Approval:
        """Approve a pending approval (an ``approver`` or ``admin`` key, never
        the key that asked); ``comment`` says why. ConflictException (409) if
        it is no longer pending."""
        return self._resolve(approval_id, "/approve", comment)

    def deny(self, approval_id: str, comment: Optional[str] = None) -> Approval:
        """Deny a pending approval; as :meth:`approve`."""
        return self._resolve(approval_id, "/deny", comment)

    def _resolve(self, approval_id: str, action: str, comment: Optional[str]) -> Approval:
        body = _http.drop_none({"comment": comment})
        path = self._approval_path(approval_id, action)
        return Approval.from_response(self._request("POST", path, body=body))

    def _report_quietly(self, decision: EnforcementDecision, outcome: ToolResult) -> None:
        """Report a call's outcome; a failure to report is logged, never raised,
        since the tool has already run."""
        if decision.local:
            return
        try:
            self.update_result(decision.session_id, decision.log_id, outcome)
        except TameSDKException as e:
            logger.warning("tamesdk: could not report the result of %s: %s", decision.tool_name, e)

    def update_result(self, session_id: str, log_id: str, result: ResultLike) -> Dict[str, Any]:
        """Record what happened when the tool of decision ``log_id`` ran.

        ``result`` is a :class:`ToolResult`, a mapping (kept whole by the
        server; ``status``, ``execution_time_ms``, ``error``, ``cost`` and
        ``result`` are understood), or any other value (sent as ``result``).
        """
        if self.config.bypass_mode:
            logger.warning("tamesdk BYPASS MODE: result of %s not recorded", log_id)
            return {"status": "bypassed", "log_id": log_id}
        return dict(
            self._request(
                "POST",
                f"/api/v1/enforce/{quote(session_id, safe='')}/result",
                body=_result_body(result),
                params={"log_id": log_id},
            )
        )

    def get_session_logs(self, session_id: Optional[str] = None) -> List[Dict[str, Any]]:
        """The decisions of a session (this client's by default), oldest first,
        each with its reported result. NotFoundException when the server has
        no such session (or it belongs to another key)."""
        sid = session_id or self.session_id
        return list(self._request("GET", f"/api/v1/sessions/{quote(sid, safe='')}", expect=list))

    def get_session_summary(self, session_id: Optional[str] = None) -> Dict[str, Any]:
        """A session's counts, per-tool counts and estimated cost."""
        sid = session_id or self.session_id
        return dict(self._request("GET", f"/api/v1/sessions/{quote(sid, safe='')}/summary"))

    def list_sessions(
        self,
        page: int = 1,
        page_size: int = 50,
        agent_id: Optional[str] = None,
        user_id: Optional[str] = None,
    ) -> Dict[str, Any]:
        """One page of session summaries: ``sessions``, ``total_count``,
        ``page``, ``page_size``."""
        params = self._sessions_params(page, page_size, agent_id, user_id)
        return dict(self._request("GET", "/api/v1/sessions", params=params))

    def get_policy_info(self) -> PolicyInfo:
        """The policy the server is using now."""
        return PolicyInfo.from_response(self._request("GET", "/api/v1/policy/current"))

    def test_policy(
        self,
        tool_name: str,
        tool_args: Optional[Mapping[str, Any]] = None,
        *,
        session_id: Optional[str] = None,
        agent_id: Optional[str] = None,
        user_id: Optional[str] = None,
        metadata: Optional[Mapping[str, Any]] = None,
    ) -> Dict[str, Any]:
        """What the policy would decide, without recording or counting anything:
        ``decision``, ``reason``, ``rule_name``, ``policy_version`` and the
        ``trace`` of rules tried."""
        body = self._enforce_body(
            tool_name, dict(tool_args or {}), session_id, agent_id, user_id, metadata
        )
        return dict(self._request("POST", "/api/v1/policy/test", body=body))

    def validate_policy(self, content: str) -> Dict[str, Any]:
        """Check a policy's YAML text without loading it: ``valid``, ``errors``
        (each with ``message``, ``line``, ``column``, ``rule``), ``warnings``."""
        return dict(self._request("POST", "/api/v1/policy/validate", body={"content": content}))

    def health(self) -> Dict[str, Any]:
        """The server's liveness answer (``status``, ``version``); needs no key."""
        return dict(self._request("GET", "/health"))

    def get_status(self) -> Dict[str, Any]:
        """The server's version, uptime, policy, storage, auth mode and counts."""
        return dict(self._request("GET", "/api/v1/status"))


class AsyncClient(_ClientBase):
    """The asyncio version of :class:`Client`, with the same methods as coroutines.

    Use it as an async context manager, or await :meth:`aclose`.
    """

    _http: httpx.AsyncClient
    #: How the client waits before a retry (replaceable, to count the waits).
    _sleep: Callable[[float], Awaitable[None]] = staticmethod(asyncio.sleep)

    def _open(self) -> None:
        self._http = httpx.AsyncClient(
            base_url=self.config.api_url,
            headers=_http.headers(self.config),
            timeout=_http.timeout(self.config),
            limits=_http.limits(),
        )

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def _request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Optional[Dict[str, Any]] = None,
        timeout: Optional[httpx.Timeout] = None,
        expect: type = dict,
    ) -> Any:
        content, extra = _http.encode(body)
        attempt = 0
        while True:
            try:
                response = await self._http.request(
                    method,
                    path,
                    content=content,
                    params=params,
                    headers=extra,
                    timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
                )
            except httpx.TransportError as e:
                if _http.retryable(e) and attempt < self.config.max_retries:
                    await self._sleep(_http.backoff(self.config, attempt))
                    attempt += 1
                    continue
                raise _http.connection_error(self.config, e) from e
            if response.status_code == 503 and attempt < self.config.max_retries:
                await self._sleep(_http.backoff(self.config, attempt))
                attempt += 1
                continue
            return _http.result(response, expect)

    async def enforce(
        self,
        tool_name: str,
        tool_args: Optional[Mapping[str, Any]] = None,
        *,
        session_id: Optional[str] = None,
        agent_id: Optional[str] = None,
        user_id: Optional[str] = None,
        metadata: Optional[Mapping[str, Any]] = None,
        approval_id: Optional[str] = None,
    ) -> EnforcementDecision:
        """As :meth:`Client.enforce`."""
        args = dict(tool_args or {})
        if self.config.bypass_mode:
            return self._bypassed(tool_name, args, session_id)
        body = self._enforce_body(
            tool_name, args, session_id, agent_id, user_id, metadata, approval_id
        )
        try:
            data = await self._request("POST", "/api/v1/enforce", body=body)
        except ConnectionException as e:
            return self._unreachable(e, tool_name, args, session_id)
        return EnforcementDecision.from_response(data, tool_name, args)

    async def execute_tool(
        self,
        tool_name: str,
        tool_args: Optional[Mapping[str, Any]] = None,
        executor: Optional[Executor] = None,
        *,
        session_id: Optional[str] = None,
        metadata: Optional[Mapping[str, Any]] = None,
        raise_on_deny: Optional[bool] = None,
        raise_on_approve: Optional[bool] = None,
    ) -> Any:
        """As :meth:`Client.execute_tool`; the executor may be sync or async."""
        args = dict(tool_args or {})
        if executor is None:
            decision = await self.enforce(tool_name, args, session_id=session_id, metadata=metadata)
            self._may_run(decision, raise_on_deny, raise_on_approve)
            return decision
        run = executor
        return await self._guarded_async(
            tool_name,
            args,
            lambda: run(tool_name, args),
            session_id=session_id,
            metadata=metadata,
            raise_on_deny=raise_on_deny,
            raise_on_approve=raise_on_approve,
        )

    async def _guarded_async(
        self,
        tool_name: str,
        tool_args: Dict[str, Any],
        call: Callable[[], Union[Any, Awaitable[Any]]],
        *,
        session_id: Optional[str] = None,
        metadata: Optional[Mapping[str, Any]] = None,
        raise_on_deny: Optional[bool] = None,
        raise_on_approve: Optional[bool] = None,
        await_approval: bool = False,
        approval_timeout: Optional[float] = None,
    ) -> Any:
        decision = await self.enforce(
            tool_name, tool_args, session_id=session_id, metadata=metadata
        )
        if await_approval and decision.requires_approval:
            decision = await self._run_approved(decision, approval_timeout, metadata)
        if not self._may_run(decision, raise_on_deny, raise_on_approve):
            return None
        started = time.perf_counter()
        try:
            value = call()
            if inspect.isawaitable(value):
                value = await value
        except Exception as e:
            await self._report_quietly(decision, self._outcome(started, e))
            raise
        await self._report_quietly(decision, self._outcome(started, None, value))
        return value

    async def _run_approved(
        self,
        decision: EnforcementDecision,
        approval_timeout: Optional[float],
        metadata: Optional[Mapping[str, Any]],
    ) -> EnforcementDecision:
        approval_id = self._asked(decision)
        await self._wait(approval_id, approval_timeout, decision)
        return await self.enforce(
            decision.tool_name,
            decision.tool_args,
            session_id=decision.session_id,
            metadata=metadata,
            approval_id=approval_id,
        )

    async def _wait(
        self,
        approval_id: str,
        timeout: Optional[float],
        decision: Optional[EnforcementDecision] = None,
    ) -> Approval:
        limit = self._approval_limit(timeout)
        deadline = time.monotonic() + limit
        path = self._approval_path(approval_id)
        failures = 0
        while True:
            wait = _http.poll_seconds(deadline - time.monotonic())
            try:
                data = await self._request(
                    "GET",
                    path,
                    params={"wait": wait},
                    timeout=_http.poll_timeout(self.config, wait),
                )
            except ConnectionException:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise
                await self._sleep(min(remaining, _http.backoff(self.config, failures)))
                failures += 1
                continue
            failures = 0
            approval = Approval.from_response(data)
            if self._settled(approval, decision, limit, deadline - time.monotonic()):
                return approval

    async def wait_for_approval(
        self, approval_id: str, timeout: Optional[float] = None
    ) -> Approval:
        """As :meth:`Client.wait_for_approval`."""
        return await self._wait(approval_id, timeout)

    async def get_approval(self, approval_id: str) -> Approval:
        """As :meth:`Client.get_approval`."""
        data = await self._request("GET", self._approval_path(approval_id))
        return Approval.from_response(data)

    async def list_approvals(
        self, status: Optional[str] = "pending", limit: Optional[int] = None
    ) -> List[Approval]:
        """As :meth:`Client.list_approvals`."""
        data = await self._request(
            "GET", "/api/v1/approvals", params=self._approvals_params(status, limit)
        )
        return [Approval.from_response(a) for a in data.get("approvals") or []]

    async def approve(self, approval_id: str, comment: Optional[str] = None) -> Approval:
        """As :meth:`Client.approve`."""
        return await self._resolve(approval_id, "/approve", comment)

    async def deny(self, approval_id: str, comment: Optional[str] = None) -> Approval:
        """As :meth:`Client.deny`."""
        return await self._resolve(approval_id, "/deny", comment)

    async def _resolve(self, approval_id: str, action: str, comment: Optional[str]) -> Approval:
        body = _http.drop_none({"comment": comment})
        path = self._approval_path(approval_id, action)
        return Approval.from_response(await self._request("POST", path, body=body))

    async def _report_quietly(self, decision: EnforcementDecision, outcome: ToolResult) -> None:
        if decision.local:
            return
        try:
            await self.update_result(decision.session_id, decision.log_id, outcome)
        except TameSDKException as e:
            logger.warning("tamesdk: could not report the result of %s: %s", decision.tool_name, e)

    async def update_result(
        self, session_id: str, log_id: str, result: ResultLike
    ) -> Dict[str, Any]:
        """As :meth:`Client.update_result`."""
        if self.config.bypass_mode:
            logger.warning("tamesdk BYPASS MODE: result of %s not recorded", log_id)
            return {"status": "bypassed", "log_id": log_id}
        return dict(
            await self._request(
                "POST",
                f"/api/v1/enforce/{quote(session_id, safe='')}/result",
                body=_result_body(result),
                params={"log_id": log_id},
            )
        )

    async def get_session_logs(self, session_id: Optional[str] = None) -> List[Dict[str, Any]]:
        """As :meth:`Client.get_session_logs`."""
        sid = session_id or self.session_id
        return list(
            await self._request("GET", f"/api/v1/sessions/{quote(sid, safe='')}", expect=list)
        )

    async def get_session_summary(self, session_id: Optional[str] = None) -> Dict[str, Any]:
        """As :meth:`Client.get_session_summary`."""
        sid = session_id or self.session_id
        return dict(await self._request("GET", f"/api/v1/sessions/{quote(sid, safe='')}/summary"))

    async def list_sessions(
        self,
        page: int = 1,
        page_size: int = 50,
        agent_id: Optional[str] = None,
        user_id: Optional[str] = None,
    ) -> Dict[str, Any]:
        """As :meth:`Client.list_sessions`."""
        params = self._sessions_params(page, page_size, agent_id, user_id)
        return dict(await self._request("GET", "/api/v1/sessions", params=params))

    async def get_policy_info(self) -> PolicyInfo:
        """As :meth:`Client.get_policy_info`."""
        return PolicyInfo.from_response(await self._request("GET", "/api/v1/policy/current"))

    async def test_policy(
        self,
        tool_name: str,
        tool_args: Optional[Mapping[str, Any]] = None,
        *,
        session_id: Optional[str] = None,
        agent_id: Optional[str] = None,
        user_id: Optional[str] = None,
        metadata: Optional[Mapping[str, Any]] = None,
    ) -> Dict[str, Any]:
        """As :meth:`Client.test_policy`."""
        body = self._enforce_body(
            tool_name, dict(tool_args or {}), session_id, agent_id, user_id, metadata
        )
        return dict(await self._request("POST", "/api/v1/policy/test", body=body))

    async def validate_policy(self, content: str) -> Dict[str, Any]:
        """As :meth:`Client.validate_policy`."""
        return dict(
            await self._request("POST", "/api/v1/policy/validate", body={"content": content})
        )

    async def health(self) -> Dict[str, Any]:
        """As :meth:`Client.health`."""
        return dict(await self._request("GET", "/health"))

    async def get_status(self) -> Dict[str, Any]:
        """As :meth:`Client.get_status`."""
        return dict(await self._request("GET", "/api/v1/status"))
