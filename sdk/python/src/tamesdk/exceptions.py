"""The exceptions the SDK raises, and how an HTTP error answer becomes one.

Every exception is a :class:`TameSDKException`. Those that come from an
answer of the server carry its ``status_code`` and its error ``code``; those
that come from a decision carry the :class:`~tamesdk.models.EnforcementDecision`
as ``decision``.

=====================================  ==========================================
HTTP status                            exception
=====================================  ==========================================
400, 413, 422                          :class:`ValidationException`
401                                    :class:`AuthenticationException`
403                                    :class:`PermissionDeniedException`
                                       (a subclass of ``AuthenticationException``)
404                                    :class:`NotFoundException`
409                                    :class:`ConflictException`
429                                    :class:`RateLimitException` (``retry_after``)
503 (after the retries)                :class:`ConnectionException`
connection refused, timeout            :class:`ConnectionException`
any other error                        :class:`TameSDKException`
2xx the SDK cannot read                :class:`TameSDKException` (never failed open)
a call it cannot send as it is         :class:`ValidationException` (nothing sent)
=====================================  ==========================================
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:
    from .models import Approval, EnforcementDecision


class TameSDKException(Exception):
    """Base class of every exception the SDK raises."""

    def __init__(
        self,
        message: str,
        *,
        status_code: Optional[int] = None,
        code: Optional[str] = None,
        decision: Optional[EnforcementDecision] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        #: The HTTP status of the server's answer, when there was one.
        self.status_code = status_code
        #: The server's error code (``invalid_request``, ``rate_limited``, ...).
        self.code = code
        #: The decision behind the exception, when there is one.
        self.decision = decision


class PolicyViolationException(TameSDKException):
    """The policy denied the call; ``decision`` says which rule and why."""

    decision: EnforcementDecision

    def __init__(self, decision: EnforcementDecision) -> None:
        super().__init__(
            f"{decision.tool_name}: denied by policy: {decision.reason}", decision=decision
        )


class ApprovalRequiredException(TameSDKException):
    """The policy wants a human to approve the call first; ``decision`` says why."""

    decision: EnforcementDecision

    def __init__(self, decision: EnforcementDecision) -> None:
        super().__init__(
            f"{decision.tool_name}: approval required: {decision.reason}", decision=decision
        )


class ApprovalDeniedException(PolicyViolationException):
    """A human denied the call, or nobody answered before the approval
    expired (which counts as denied). ``approval`` says who, when and why
    (``status`` is ``denied`` or ``expired``); ``decision`` is the ``approve``
    decision that asked."""

    def __init__(self, approval: Approval, decision: Optional[EnforcementDecision] = None) -> None:
        asked = decision if decision is not None else approval.to_decision()
        if approval.status.value == "expired":
            what = f"approval {approval.id} expired without an answer"
        else:
            what = f"approval {approval.id} denied by {approval.resolved_by or 'an approver'}"
            if approval.comment:
                what += f": {approval.comment}"
        TameSDKException.__init__(self, f"{asked.tool_name}: {what}", decision=asked)
        self.decision = asked
        #: The approval as it ended.
        self.approval = approval


class ApprovalTimeoutException(ApprovalRequiredException):
    """Nobody approved or denied the call within the time the SDK was told to
    wait. The approval is still pending (``approval``): it may be waited for
    again until it expires on the server."""

    def __init__(
        self, approval: Approval, timeout: float, decision: Optional[EnforcementDecision] = None
    ) -> None:
        asked = decision if decision is not None else approval.to_decision()
        TameSDKException.__init__(
            self,
            f"{asked.tool_name}: approval {approval.id} still pending after {timeout:g} s",
            decision=asked,
        )
        self.decision = asked
        #: The approval, still pending.
        self.approval = approval
        #: How long the SDK waited, in seconds.
        self.timeout = timeout


class ConnectionException(TameSDKException):
    """No decision could be had: the server could not be reached, did not
    answer in time, or answered 503 (unavailable) after every retry."""


class AuthenticationException(TameSDKException):
    """401: the API key is missing or not valid."""


class PermissionDeniedException(AuthenticationException):
    """403: the key is valid but may not do this: its role lacks the right
    (an ``approver`` key asking for a decision, an ``agent`` key resolving an
    approval), the session was opened by another key, or the key is the one
    that asked for the approval it tries to resolve."""


class ValidationException(TameSDKException):
    """The request (400, 413, 422) or the SDK's configuration is not valid.
    A 422 also refuses an approval presented with another call than the one
    it approved (other arguments, tool or session, or a changed policy).

    Raised too, before anything is sent or run, for a call the SDK cannot
    show the policy as it is: two arguments of a decorated function that
    would share one name in ``tool_args``, or a body JSON cannot hold
    (nested too deeply, containing itself, or two keys JSON writes alike)."""


class NotFoundException(TameSDKException):
    """404: no such session, log entry or approval (or one that belongs to another key)."""


class ConflictException(TameSDKException):
    """409: the approval is not in a state that allows this: resolving one
    already approved, denied or expired, or presenting one that is pending,
    denied, expired or already used."""


class RateLimitException(TameSDKException):
    """429: over the rate limit; ``retry_after`` is how many seconds to wait."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: Optional[float],
        status_code: Optional[int] = 429,
        code: Optional[str] = None,
    ) -> None:
        super().__init__(message, status_code=status_code, code=code)
        #: Seconds to wait before retrying, from the ``Retry-After`` header.
        self.retry_after = retry_after


def _parse_retry_after(value: Optional[str]) -> Optional[float]:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def from_response(
    status_code: int, body: Any, retry_after: Optional[str] = None
) -> TameSDKException:
    """The exception for an error answer: its status, its JSON body (or None)
    and its ``Retry-After`` header."""
    code: Optional[str] = None
    message = f"the server answered {status_code}"
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        code = error.get("code") if isinstance(error.get("code"), str) else None
        if isinstance(error.get("message"), str):
            message = f"{error['message']} ({status_code})"
    if status_code in (400, 413, 422):
        return ValidationException(message, status_code=status_code, code=code)
    if status_code == 401:
        return AuthenticationException(message, status_code=status_code, code=code)
    if status_code == 403:
        return PermissionDeniedException(message, status_code=status_code, code=code)
    if status_code == 404:
        return NotFoundException(message, status_code=status_code, code=code)
    if status_code == 409:
        return ConflictException(message, status_code=status_code, code=code)
    if status_code == 429:
        return RateLimitException(
            message,
            retry_after=_parse_retry_after(retry_after),
            status_code=status_code,
            code=code,
        )
    if status_code == 503:
        return ConnectionException(
            f"the server is unavailable: {message}",
            status_code=status_code,
            code=code,
        )
    return TameSDKException(message, status_code=status_code, code=code)
