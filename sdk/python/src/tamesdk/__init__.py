"""tamesdk: the Python SDK of Tame, the policy decision server for AI agents.

Ask the policy before an agent's tool runs (decorators or clients), wait for
a human's approval when the policy asks for one, report what the tool did,
and read sessions and the policy. Everything public is
importable from here.
"""

from ._version import __version__
from .client import AsyncClient, Client
from .config import FAIL_CLOSED, FAIL_OPEN, Config, configure, get_config
from .decorators import enforce_policy, log_action, with_approval
from .exceptions import (
    ApprovalDeniedException,
    ApprovalRequiredException,
    ApprovalTimeoutException,
    AuthenticationException,
    ConflictException,
    ConnectionException,
    NotFoundException,
    PermissionDeniedException,
    PolicyViolationException,
    RateLimitException,
    TameSDKException,
    ValidationException,
)
from .models import (
    ActionType,
    Approval,
    ApprovalStatus,
    EnforcementDecision,
    PolicyInfo,
    ToolResult,
)

__all__ = [
    "FAIL_CLOSED",
    "FAIL_OPEN",
    "ActionType",
    "Approval",
    "ApprovalDeniedException",
    "ApprovalRequiredException",
    "ApprovalStatus",
    "ApprovalTimeoutException",
    "AsyncClient",
    "AuthenticationException",
    "Client",
    "Config",
    "ConflictException",
    "ConnectionException",
    "EnforcementDecision",
    "NotFoundException",
    "PermissionDeniedException",
    "PolicyInfo",
    "PolicyViolationException",
    "RateLimitException",
    "TameSDKException",
    "ToolResult",
    "ValidationException",
    "__version__",
    "configure",
    "enforce_policy",
    "get_config",
    "log_action",
    "with_approval",
]
