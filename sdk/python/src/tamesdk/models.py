"""The SDK's data: a policy decision, a human's approval of one call, the
current policy, and the outcome of a tool call as it is reported back to the
server."""

from __future__ import annotations

import enum
import reprlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Dict, List, Mapping, Optional, Type, TypeVar

from .exceptions import TameSDKException

E = TypeVar("E", bound=enum.Enum)


class ActionType(str, enum.Enum):
    """What the policy decided."""

    ALLOW = "allow"
    DENY = "deny"
    APPROVE = "approve"


def parse_timestamp(value: Any) -> Optional[datetime]:
    """An RFC 3339 timestamp as an aware datetime (None when absent or unreadable)."""
    if not isinstance(value, str) or not value:
        return None
    text = value[:-1] + "+00:00" if value.endswith("Z") else value
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _malformed(answer: str, problem: str) -> TameSDKException:
    """A successful answer the SDK cannot read: never acted on."""
    return TameSDKException(f"malformed {answer} from the server: {problem}")


def _shown(value: Any) -> str:
    """A value for an error message, shortened (it came from the network)."""
    return reprlib.repr(value)


def _text(data: Mapping[str, Any], key: str, answer: str) -> Optional[str]:
    """Field ``key`` of an answer: a string, or None when absent or null."""
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise _malformed(answer, f"{key!r} is {_shown(value)}, not a string")
    return value


def _required_text(data: Mapping[str, Any], key: str, answer: str) -> str:
    """Field ``key`` of an answer: a string that is there and not empty."""
    value = _text(data, key, answer)
    if not value:
        raise _malformed(answer, f"no {key!r}" if value is None else f"{key!r} is empty")
    return value


def _choice(data: Mapping[str, Any], key: str, answer: str, kind: Type[E]) -> E:
    """Field ``key`` of an answer: one of the values of ``kind``, exactly."""
    value = _required_text(data, key, answer)
    for member in kind:
        if value == member.value:
            return member
    allowed = ", ".join(repr(member.value) for member in kind)
    raise _malformed(answer, f"{key!r} is {_shown(value)}, not one of {allowed}")


def _time(data: Mapping[str, Any], key: str, answer: str) -> datetime:
    """Field ``key`` of an answer: an RFC 3339 time with its offset."""
    value = data.get(key)
    if value is None:
        raise _malformed(answer, f"no {key!r}")
    parsed = parse_timestamp(value)
    if parsed is None or parsed.tzinfo is None:
        raise _malformed(answer, f"{key!r} is {_shown(value)}, not an RFC 3339 time with an offset")
    return parsed


@dataclass
class EnforcementDecision:
    """Result of policy enforcement: what the policy said about one tool call."""

    session_id: str
    action: ActionType
    rule_name: Optional[str]
    reason: str
    policy_version: str
    log_id: str
    timestamp: datetime
    tool_name: str
    tool_args: Dict[str, Any]
    policy_hash: Optional[str] = None
    metadata: Dict[str, Any] = field(default_factory=dict)
    approval_id: Optional[str] = None
    #: True when the SDK decided without the server (bypass mode, or
    #: ``fail_open`` with the server unreachable): nothing was recorded.
    local: bool = False

    @property
    def is_allowed(self) -> bool:
        return self.action is ActionType.ALLOW

    @property
    def is_denied(self) -> bool:
        return self.action is ActionType.DENY

    @property
    def requires_approval(self) -> bool:
        return self.action is ActionType.APPROVE

    @classmethod
    def from_response(
        cls, data: Mapping[str, Any], tool_name: str, tool_args: Dict[str, Any]
    ) -> EnforcementDecision:
        """The decision of an ``/api/v1/enforce`` answer.

        Every field is checked, since the tool runs or not on what it says:
        ``session_id``, ``decision`` (``allow``, ``deny`` or ``approve``),
        ``log_id`` and ``timestamp`` (RFC 3339, with its offset) must be
        there; the others may be null, but not of another type. Anything
        else raises TameSDKException, and nothing runs.
        """
        answer = "decision"
        metadata = data.get("metadata")
        if metadata is not None and not isinstance(metadata, dict):
            raise _malformed(answer, f"'metadata' is {_shown(metadata)}, not an object")
        return cls(
            session_id=_required_text(data, "session_id", answer),
            action=_choice(data, "decision", answer, ActionType),
            rule_name=_text(data, "rule_name", answer),
            reason=_text(data, "reason", answer) or "",
            policy_version=_text(data, "policy_version", answer) or "",
            log_id=_required_text(data, "log_id", answer),
            timestamp=_time(data, "timestamp", answer),
            tool_name=tool_name,
            tool_args=tool_args,
            policy_hash=_text(data, "policy_hash", answer),
            metadata=dict(metadata or {}),
            approval_id=_text(data, "approval_id", answer),
        )

    @classmethod
    def local_allow(
        cls, session_id: str, tool_name: str, tool_args: Dict[str, Any], reason: str
    ) -> EnforcementDecision:
        """An allow the SDK made itself, without the server."""
        return cls(
            session_id=session_id,
            action=ActionType.ALLOW,
            rule_name=None,
            reason=reason,
            policy_version="",
            log_id="",
            timestamp=datetime.now(timezone.utc),
            tool_name=tool_name,
            tool_args=tool_args,
            local=True,
        )

    def to_dict(self) -> Dict[str, Any]:
        """The decision as JSON-ready data."""
        return {
            "session_id": self.session_id,
            "decision": self.action.value,
            "rule_name": self.rule_name,
            "reason": self.reason,
            "policy_version": self.policy_version,
            "policy_hash": self.policy_hash,
            "log_id": self.log_id,
            "timestamp": self.timestamp.isoformat(),
            "tool_name": self.tool_name,
            "tool_args": self.tool_args,
            "metadata": self.metadata,
            "approval_id": self.approval_id,
            "local": self.local,
        }


class ApprovalStatus(str, enum.Enum):
    """Where an approval stands. ``expired`` counts as denied."""

    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    EXPIRED = "expired"


@dataclass
class Approval:
    """A human's answer to one exact call that the policy sent for approval.

    It is bound to that call: its session, tool name and arguments. Once
    ``approved``, presenting its ``id`` with the same call to ``enforce``
    (``approval_id=``) allows the call, exactly once; ``consumed_at`` then
    says when.
    """

    id: str
    status: ApprovalStatus
    session_id: str
    tool_name: str
    tool_args: Dict[str, Any]
    #: The ``approve`` decision that asked for it.
    log_id: str
    rule_name: Optional[str] = None
    reason: str = ""
    policy_version: str = ""
    policy_hash: Optional[str] = None
    #: Who asked (the key's id, or ``open:...`` when the server runs without keys).
    requested_by: Optional[str] = None
    created_at: Optional[datetime] = None
    expires_at: Optional[datetime] = None
    resolved_at: Optional[datetime] = None
    #: Who approved or denied it (``system`` for an expiry).
    resolved_by: Optional[str] = None
    #: Why, in the resolver's words.
    comment: Optional[str] = None
    consumed_at: Optional[datetime] = None
    #: The ``allow`` decision that used it.
    consumed_log_id: Optional[str] = None
    #: Every audit event about it (requested, resolved, used or expired),
    #: oldest first; only in answers about one approval.
    history: List[Dict[str, Any]] = field(default_factory=list)
    #: Whether presenting it now would let its call through: approved, not
    #: used and not past ``expires_at`` (as the server saw it when it answered).
    usable: bool = False

    @property
    def is_pending(self) -> bool:
        return self.status is ApprovalStatus.PENDING

    @property
    def is_approved(self) -> bool:
        return self.status is ApprovalStatus.APPROVED

    @property
    def is_denied(self) -> bool:
        """Denied by a person, or expired (which counts as denied)."""
        return self.status in (ApprovalStatus.DENIED, ApprovalStatus.EXPIRED)

    @property
    def is_used(self) -> bool:
        """Approved and already presented: it cannot allow another call."""
        return self.consumed_at is not None or self.consumed_log_id is not None

    @classmethod
    def from_response(cls, data: Mapping[str, Any]) -> Approval:
        """The approval of an ``/api/v1/approvals`` answer."""
        if not isinstance(data, Mapping):
            raise _malformed("approval", f"{_shown(data)} is not an object")
        args = data.get("tool_args")
        return cls(
            id=_required_text(data, "id", "approval"),
            status=_choice(data, "status", "approval", ApprovalStatus),
            session_id=str(data.get("session_id") or ""),
            tool_name=str(data.get("tool_name") or ""),
            tool_args=dict(args) if isinstance(args, Mapping) else {},
            log_id=str(data.get("log_id") or ""),
            rule_name=data.get("rule_name"),
            reason=str(data.get("reason") or ""),
            policy_version=str(data.get("policy_version") or ""),
            policy_hash=data.get("policy_hash"),
            requested_by=data.get("requested_by"),
            created_at=parse_timestamp(data.get("created_at")),
            expires_at=parse_timestamp(data.get("expires_at")),
            resolved_at=parse_timestamp(data.get("resolved_at")),
            resolved_by=data.get("resolved_by"),
            comment=data.get("comment"),
            consumed_at=parse_timestamp(data.get("consumed_at")),
            consumed_log_id=data.get("consumed_log_id"),
            history=list(data.get("history") or []),
            usable=data.get("usable") is True,
        )

    def to_decision(self) -> EnforcementDecision:
        """The ``approve`` decision that asked for this approval."""
        return EnforcementDecision(
            session_id=self.session_id,
            action=ActionType.APPROVE,
            rule_name=self.rule_name,
            reason=self.reason,
            policy_version=self.policy_version,
            log_id=self.log_id,
            timestamp=self.created_at or datetime.now(timezone.utc),
            tool_name=self.tool_name,
            tool_args=dict(self.tool_args),
            policy_hash=self.policy_hash,
            approval_id=self.id,
        )

    def to_dict(self) -> Dict[str, Any]:
        """The approval as JSON-ready data, as the server shows it."""

        def when(value: Optional[datetime]) -> Optional[str]:
            return value.isoformat() if value else None

        return {
            "id": self.id,
            "status": self.status.value,
            "session_id": self.session_id,
            "log_id": self.log_id,
            "tool_name": self.tool_name,
            "tool_args": self.tool_args,
            "rule_name": self.rule_name,
            "reason": self.reason,
            "policy_version": self.policy_version,
            "policy_hash": self.policy_hash,
            "requested_by": self.requested_by,
            "created_at": when(self.created_at),
            "expires_at": when(self.expires_at),
            "resolved_at": when(self.resolved_at),
            "resolved_by": self.resolved_by,
            "comment": self.comment,
            "consumed_at": when(self.consumed_at),
            "consumed_log_id": self.consumed_log_id,
            "history": self.history,
            "usable": self.usable,
        }


@dataclass
class PolicyInfo:
    """The policy the server is using now."""

    version: str
    description: Optional[str]
    rules_count: int
    hash: str
    active: bool
    last_updated: Optional[datetime]
    rules: List[Dict[str, Any]] = field(default_factory=list)
    strategy: Optional[str] = None
    default_action: Optional[str] = None
    timezone: Optional[str] = None

    @classmethod
    def from_response(cls, data: Mapping[str, Any]) -> PolicyInfo:
        """The policy of an ``/api/v1/policy/current`` answer."""
        count = data.get("rules_count") or 0
        if isinstance(count, bool) or not isinstance(count, int):
            raise _malformed("policy", f"'rules_count' is {_shown(count)}, not a whole number")
        return cls(
            version=str(data.get("version") or ""),
            description=data.get("description"),
            rules_count=count,
            hash=str(data.get("hash") or ""),
            active=bool(data.get("active", True)),
            last_updated=parse_timestamp(data.get("last_updated")),
            rules=list(data.get("rules") or []),
            strategy=data.get("strategy"),
            default_action=data.get("default_action"),
            timezone=data.get("timezone"),
        )

    def to_dict(self) -> Dict[str, Any]:
        """The policy as JSON-ready data."""
        return {
            "version": self.version,
            "description": self.description,
            "rules_count": self.rules_count,
            "hash": self.hash,
            "active": self.active,
            "last_updated": self.last_updated.isoformat() if self.last_updated else None,
            "strategy": self.strategy,
            "default_action": self.default_action,
            "timezone": self.timezone,
            "rules": self.rules,
        }


@dataclass
class ToolResult:
    """What happened when a tool ran, as reported with ``update_result``.

    ``status`` is ``success`` or ``error`` (any text is kept); ``cost`` is
    added to the session's ``estimated_cost`` on the server, which policies
    can read as ``session.estimated_cost``.
    """

    status: str
    result: Any = None
    error: Optional[str] = None
    execution_time_ms: Optional[float] = None
    cost: Optional[float] = None

    def to_dict(self) -> Dict[str, Any]:
        """The body of a result report: the fields that are set."""
        body: Dict[str, Any] = {"status": self.status}
        for key in ("result", "error", "execution_time_ms", "cost"):
            value = getattr(self, key)
            if value is not None:
                body[key] = value
        return body
