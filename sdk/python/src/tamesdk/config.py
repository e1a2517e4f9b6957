"""Configuration: where the server is, who is asking, and what the SDK does
when it cannot get an answer.

Each setting is taken from the first place that has it: an explicit argument
(to :func:`configure` or a client), the environment (``TAME_API_URL``,
``TAME_API_KEY``, ``TAME_SESSION_ID``, ``TAME_AGENT_ID``, ``TAME_USER_ID``,
``TAME_BYPASS_MODE``), the config file (``~/.tame/config.yaml``, or the file
given), then the defaults below.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Union

import yaml

from .exceptions import ValidationException

FAIL_CLOSED = "fail_closed"
FAIL_OPEN = "fail_open"

#: Settings read from the environment, and the variable of each.
ENV_VARS: Dict[str, str] = {
    "api_url": "TAME_API_URL",
    "api_key": "TAME_API_KEY",
    "session_id": "TAME_SESSION_ID",
    "agent_id": "TAME_AGENT_ID",
    "user_id": "TAME_USER_ID",
    "bypass_mode": "TAME_BYPASS_MODE",
}

PathLike = Union[str, "os.PathLike[str]"]


def default_config_path() -> Path:
    """``~/.tame/config.yaml``."""
    return Path.home() / ".tame" / "config.yaml"


@dataclass(frozen=True)
class Config:
    """Every setting of the SDK, resolved."""

    #: The Tame server.
    api_url: str = "http://localhost:8000"
    #: Sent as ``Authorization: Bearer <key>``; none when the server runs open.
    api_key: Optional[str] = None
    #: The session decisions are recorded in; a client makes a fresh one when unset.
    session_id: Optional[str] = None
    agent_id: Optional[str] = None
    user_id: Optional[str] = None
    #: Sent with every decision (policies see it as ``metadata``).
    metadata: Dict[str, Any] = field(default_factory=dict)
    #: Seconds to wait for the server: to connect, and for each answer.
    timeout: float = 30.0
    #: Retries after a failure to connect or a 503, with doubling waits.
    max_retries: int = 3
    #: The first wait between retries, in seconds.
    retry_backoff: float = 0.25
    #: How long ``with_approval`` and ``wait_for_approval`` wait for a human's
    #: answer, in seconds, before raising ApprovalTimeoutException.
    approval_timeout: float = 300.0
    #: Decorators and ``execute_tool`` raise PolicyViolationException on deny.
    raise_on_deny: bool = True
    #: Decorators and ``execute_tool`` raise ApprovalRequiredException on approve.
    raise_on_approve: bool = True
    #: Skip the server entirely and allow everything (loudly). For development only.
    bypass_mode: bool = False
    #: ``fail_closed``: no answer from the server raises ConnectionException and
    #: nothing runs. ``fail_open``: the call runs anyway, with a warning.
    failure_mode: str = FAIL_CLOSED

    def __post_init__(self) -> None:
        _check(self)

    def replace(self, **changes: Any) -> Config:
        """A copy with some settings changed (None leaves a setting as it is)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self, *, mask_secrets: bool = False) -> Dict[str, Any]:
        """The settings as a mapping, the API key hidden if asked."""
        data = dataclasses.asdict(self)
        if mask_secrets and data["api_key"]:
            key = data["api_key"]
            data["api_key"] = key[:4] + "…" if len(key) > 8 else "…"
        return data

    def save(self, path: Optional[PathLike] = None) -> Path:
        """Write the settings as a config file (readable by its owner only,
        since it holds the API key); returns where."""
        target = Path(path).expanduser() if path is not None else default_config_path()
        target.parent.mkdir(parents=True, exist_ok=True)
        text = yaml.safe_dump(self.to_dict(), sort_keys=False)
        fd = os.open(str(target), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(target, 0o600)
        return target


FIELDS = {f.name: f for f in dataclasses.fields(Config)}


def _check(config: Config) -> None:
    def fail(message: str) -> None:
        raise ValidationException(f"configuration: {message}")

    if not isinstance(config.api_url, str) or not config.api_url.startswith(
        ("http://", "https://")
    ):
        fail(f"api_url must start with http:// or https://, not {config.api_url!r}")
    for name in ("api_key", "session_id", "agent_id", "user_id"):
        value = getattr(config, name)
        if value is not None and not isinstance(value, str):
            fail(f"{name} must be text, not {type(value).__name__}")
    if not isinstance(config.metadata, dict):
        fail("metadata must be a mapping")
    if isinstance(config.timeout, bool) or not isinstance(config.timeout, (int, float)):
        fail(f"timeout must be a number of seconds, not {config.timeout!r}")
    if config.timeout <= 0:
        fail(f"timeout must be more than 0 seconds, not {config.timeout!r}")
    if (
        isinstance(config.max_retries, bool)
        or not isinstance(config.max_retries, int)
        or config.max_retries < 0
    ):
        fail(f"max_retries must be a whole number of 0 or more, not {config.max_retries!r}")
    if (
        isinstance(config.retry_backoff, bool)
        or not isinstance(config.retry_backoff, (int, float))
        or config.retry_backoff < 0
    ):
        fail(f"retry_backoff must be a number of seconds, not {config.retry_backoff!r}")
    if (
        isinstance(config.approval_timeout, bool)
        or not isinstance(config.approval_timeout, (int, float))
        or config.approval_timeout < 0
    ):
        fail(
            f"approval_timeout must be a number of seconds, 0 or more, "
            f"not {config.approval_timeout!r}"
        )
    for name in ("raise_on_deny", "raise_on_approve", "bypass_mode"):
        if not isinstance(getattr(config, name), bool):
            fail(f"{name} must be true or false, not {getattr(config, name)!r}")
    if config.failure_mode not in (FAIL_CLOSED, FAIL_OPEN):
        fail(f"failure_mode must be {FAIL_CLOSED} or {FAIL_OPEN}, not {config.failure_mode!r}")


def _parse_bool(name: str, text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValidationException(f"{name} must be true or false, not {text!r}")


def _from_env(environ: Mapping[str, str]) -> Dict[str, Any]:
    values: Dict[str, Any] = {}
    for name, var in ENV_VARS.items():
        text = environ.get(var)
        if text is None or text == "":
            continue
        values[name] = _parse_bool(var, text) if name == "bypass_mode" else text
    return values


def read_config_file(path: PathLike) -> Dict[str, Any]:
    """The settings of a YAML config file; unknown keys are refused."""
    file = Path(path).expanduser()
    try:
        text = file.read_text()
    except OSError as e:
        raise ValidationException(f"cannot read config file {file}: {e.strerror}") from e
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ValidationException(f"config file {file} is not valid YAML: {e}") from e
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValidationException(f"config file {file} must be a mapping of settings")
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise ValidationException(
            f"config file {file}: unknown setting(s) {', '.join(map(str, unknown))}; "
            f"known: {', '.join(FIELDS)}"
        )
    return {k: v for k, v in data.items() if v is not None}


def load_config(
    config_file: Optional[PathLike] = None,
    environ: Optional[Mapping[str, str]] = None,
    **explicit: Any,
) -> Config:
    """Resolve every setting: ``explicit`` (None means unset), then the
    environment, then ``config_file`` (or ``~/.tame/config.yaml`` if it
    exists), then the defaults."""
    unknown = sorted(set(explicit) - set(FIELDS))
    if unknown:
        raise TypeError(f"unknown setting(s): {', '.join(unknown)}")
    values: Dict[str, Any] = {}
    if config_file is not None:
        values.update(read_config_file(config_file))
    elif default_config_path().is_file():
        values.update(read_config_file(default_config_path()))
    values.update(_from_env(os.environ if environ is None else environ))
    values.update({k: v for k, v in explicit.items() if v is not None})
    return Config(**values)


_lock = threading.Lock()
_config: Optional[Config] = None


def configure(
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
    config_file: Optional[PathLike] = None,
) -> Config:
    """Set the configuration every client and decorator starts from, and return it.

    Arguments left out come from the environment, then the config file, then
    the defaults. Calling it again replaces the whole configuration.
    """
    global _config
    config = load_config(
        config_file,
        api_url=api_url,
        api_key=api_key,
        session_id=session_id,
        agent_id=agent_id,
        user_id=user_id,
        metadata=metadata,
        timeout=timeout,
        max_retries=max_retries,
        retry_backoff=retry_backoff,
        approval_timeout=approval_timeout,
        raise_on_deny=raise_on_deny,
        raise_on_approve=raise_on_approve,
        bypass_mode=bypass_mode,
        failure_mode=failure_mode,
    )
    with _lock:
        _config = config
    return config


def get_config() -> Config:
    """The configuration set by :func:`configure`; the first call without one
    resolves it from the environment, the config file and the defaults."""
    global _config
    with _lock:
        if _config is None:
            _config = load_config()
        return _config
