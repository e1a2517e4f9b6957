"""Decorators that put a function under the policy: :func:`enforce_policy`,
:func:`with_approval` and :func:`log_action`.

A decorated function keeps its name, docstring and signature, and an async
function stays a coroutine function. Its call arguments (positional, keyword
and defaults, by parameter name, without ``self`` or ``cls``) are the tool's
arguments, all of them: a call in which two arguments would share one name
is refused before anything runs (see :func:`call_arguments`). Without a
``client``, decorated functions share the default clients made from
:func:`tamesdk.get_config`: one blocking client, one async client per event
loop, and one session for the process (until :func:`tamesdk.configure` is
called again).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import logging
import threading
import time
import uuid
import weakref
from typing import Any, Callable, Dict, Mapping, Optional, Tuple, TypeVar, Union, overload

from .client import AsyncClient, Client
from .config import Config, get_config
from .exceptions import ValidationException

F = TypeVar("F", bound=Callable[..., Any])
AnyClient = Union[Client, AsyncClient]

_lock = threading.Lock()
_session: Optional[Tuple[Config, str]] = None
_sync_default: Optional[Tuple[Config, Client]] = None
_async_defaults: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Tuple[Config, AsyncClient]]
_async_defaults = weakref.WeakKeyDictionary()


def _default_session_id(config: Config) -> str:
    """The session of the default clients: the configured one, or one made
    per configuration (so sync and async decorated calls share it)."""
    global _session
    if _session is None or _session[0] is not config:
        _session = (config, config.session_id or str(uuid.uuid4()))
    return _session[1]


def default_client() -> Client:
    """The blocking client decorated functions use when given none."""
    global _sync_default
    config = get_config()
    with _lock:
        if _sync_default is None or _sync_default[0] is not config:
            if _sync_default is not None:
                _sync_default[1].close()
            client = Client(config=config, session_id=_default_session_id(config))
            _sync_default = (config, client)
        return _sync_default[1]


async def default_async_client() -> AsyncClient:
    """The async client of the running event loop that decorated coroutine
    functions use when given none."""
    loop = asyncio.get_running_loop()
    config = get_config()
    with _lock:
        entry = _async_defaults.get(loop)
        stale = entry[1] if entry is not None and entry[0] is not config else None
        if entry is None or stale is not None:
            entry = (config, AsyncClient(config=config, session_id=_default_session_id(config)))
            _async_defaults[loop] = entry
    if stale is not None:
        await stale.aclose()
    return entry[1]


#: The kinds of parameter that can hold the instance or class of a method.
_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def call_arguments(signature: inspect.Signature, args: Any, kwargs: Any) -> Dict[str, Any]:
    """The arguments of one call, by parameter name, defaults applied:
    ``*args`` become a list under their name, ``**kwargs`` are merged in
    under their own names, and a first positional parameter named ``self``
    or ``cls`` is left out.

    The policy must see every argument the function receives, so no entry
    may replace another. Only the name of ``*args`` or of a positional-only
    parameter can also arrive as a ``**kwargs`` key (``f("/etc/shadow",
    path="/tmp/x")`` for ``def f(*path, **options)``); such a call raises
    ValidationException, and the function does not run.
    """
    bound = signature.bind(*args, **kwargs)
    bound.apply_defaults()
    result: Dict[str, Any] = {}
    extra: Dict[str, Any] = {}
    for position, (name, value) in enumerate(bound.arguments.items()):
        parameter = signature.parameters[name]
        if position == 0 and name in ("self", "cls") and parameter.kind in _POSITIONAL:
            continue
        if parameter.kind is inspect.Parameter.VAR_KEYWORD:
            extra = value
        elif parameter.kind is inspect.Parameter.VAR_POSITIONAL:
            result[name] = list(value)
        else:
            result[name] = value
    shared = [name for name in extra if name in result]
    if shared:
        name = shared[0]
        starred = signature.parameters[name].kind is inspect.Parameter.VAR_POSITIONAL
        which = f"*{name}" if starred else f"{name} (positional-only)"
        raise ValidationException(
            f"the keyword argument {name!r} and the parameter {which} would both be "
            f"tool_args[{name!r}], so the policy could not see both: nothing was asked "
            "or run; rename one of them"
        )
    result.update(extra)
    return result


def _guard(
    fn: F,
    tool_name: Optional[str],
    raise_on_deny: Optional[bool],
    raise_on_approve: Optional[bool],
    metadata: Optional[Mapping[str, Any]],
    client: Optional[AnyClient],
    await_approval: bool = False,
    approval_timeout: Optional[float] = None,
) -> F:
    name = tool_name or fn.__name__
    signature = inspect.signature(fn)
    extra = dict(metadata or {})
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            tool_args = call_arguments(signature, args, kwargs)
            chosen = client if client is not None else await default_async_client()
            return await chosen._guarded_async(
                name,
                tool_args,
                lambda: fn(*args, **kwargs),
                metadata=extra,
                raise_on_deny=raise_on_deny,
                raise_on_approve=raise_on_approve,
                await_approval=await_approval,
                approval_timeout=approval_timeout,
            )

        return async_wrapper  # type: ignore[return-value]

    if isinstance(client, AsyncClient):
        raise TypeError(
            f"{fn.__qualname__} is not async: give it a tamesdk.Client, not an AsyncClient"
        )
    sync_client: Optional[Client] = client

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        tool_args = call_arguments(signature, args, kwargs)
        chosen = sync_client if sync_client is not None else default_client()
        return chosen._guarded(
            name,
            tool_args,
            lambda: fn(*args, **kwargs),
            metadata=extra,
            raise_on_deny=raise_on_deny,
            raise_on_approve=raise_on_approve,
            await_approval=await_approval,
            approval_timeout=approval_timeout,
        )

    return wrapper  # type: ignore[return-value]


@overload
def enforce_policy(func: F) -> F: ...


@overload
def enforce_policy(
    func: None = None,
    *,
    tool_name: Optional[str] = None,
    raise_on_deny: Optional[bool] = None,
    raise_on_approve: Optional[bool] = None,
    metadata: Optional[Mapping[str, Any]] = None,
    client: Optional[AnyClient] = None,
) -> Callable[[F], F]: ...


def enforce_policy(
    func: Optional[F] = None,
    *,
    tool_name: Optional[str] = None,
    raise_on_deny: Optional[bool] = None,
    raise_on_approve: Optional[bool] = None,
    metadata: Optional[Mapping[str, Any]] = None,
    client: Optional[AnyClient] = None,
) -> Union[F, Callable[[F], F]]:
    """Ask the policy before every call of the function; run it only if allowed.

    Use bare (``@enforce_policy``) or with options. The tool's name is
    ``tool_name`` or the function's name. A deny raises
    PolicyViolationException and an approve ApprovalRequiredException unless
    ``raise_on_deny``/``raise_on_approve`` (default: the configuration's) are
    False, in which case the function does not run and the call returns None.
    After the call its result (or exception) and duration are reported.
    """

    def decorate(fn: F) -> F:
        return _guard(fn, tool_name, raise_on_deny, raise_on_approve, metadata, client)

    return decorate(func) if func is not None else decorate


@overload
def with_approval(func: F) -> F: ...


@overload
def with_approval(
    func: None = None,
    *,
    approval_message: Optional[str] = None,
    tool_name: Optional[str] = None,
    metadata: Optional[Mapping[str, Any]] = None,
    client: Optional[AnyClient] = None,
    approval_timeout: Optional[float] = None,
) -> Callable[[F], F]: ...


def with_approval(
    func: Optional[F] = None,
    *,
    approval_message: Optional[str] = None,
    tool_name: Optional[str] = None,
    metadata: Optional[Mapping[str, Any]] = None,
    client: Optional[AnyClient] = None,
    approval_timeout: Optional[float] = None,
) -> Union[F, Callable[[F], F]]:
    """:func:`enforce_policy` for operations that may need a human's approval.

    Each call asks the policy. An ``allow`` runs the function at once; a
    ``deny`` raises PolicyViolationException. An ``approve`` waits (blocking,
    or awaiting for an ``async def``) until a person resolves the approval
    the server created, for at most ``approval_timeout`` seconds (default:
    the configuration's ``approval_timeout``). Once approved, the call is
    asked again with the approval, which the server allows exactly once for
    these very arguments, and the function runs; its result is reported on
    that ``allow``. Denied or expired: ApprovalDeniedException (a
    PolicyViolationException). No answer in time: ApprovalTimeoutException
    (an ApprovalRequiredException). ``approval_message`` is sent in the
    decision's metadata for whoever reviews it.
    """
    extra = dict(metadata or {})
    if approval_message is not None:
        extra["approval_message"] = approval_message

    def decorate(fn: F) -> F:
        return _guard(fn, tool_name, True, True, extra, client, True, approval_timeout)

    return decorate(func) if func is not None else decorate


def _level(level: Union[int, str]) -> int:
    if isinstance(level, int):
        return level
    number = logging.getLevelName(level.upper())
    if not isinstance(number, int):
        raise ValueError(f"unknown logging level {level!r}")
    return number


@overload
def log_action(func: F) -> F: ...


@overload
def log_action(
    func: None = None,
    *,
    level: Union[int, str] = "INFO",
    tool_name: Optional[str] = None,
    logger: Optional[logging.Logger] = None,
) -> Callable[[F], F]: ...


def log_action(
    func: Optional[F] = None,
    *,
    level: Union[int, str] = "INFO",
    tool_name: Optional[str] = None,
    logger: Optional[logging.Logger] = None,
) -> Union[F, Callable[[F], F]]:
    """Log every call of the function, without asking the policy.

    Two records at ``level`` on ``logger`` (default ``tamesdk.actions``): the
    call with its arguments, then its outcome (``success`` or ``error``) and
    duration. Each record carries ``tool_name``, ``tool_args``, and on the
    second ``status``, ``execution_time_ms`` and ``error`` as attributes.
    Nothing is sent to the server.
    """
    number = _level(level)
    log = logger or logging.getLogger("tamesdk.actions")

    def decorate(fn: F) -> F:
        name = tool_name or fn.__name__
        signature = inspect.signature(fn)

        def before(args: Any, kwargs: Any) -> Tuple[Dict[str, Any], float]:
            tool_args = call_arguments(signature, args, kwargs)
            try:
                shown = json.dumps(tool_args, default=repr)
            except (TypeError, ValueError, RecursionError) as e:
                # Too deep, circular, or keys JSON cannot hold: logging never stops the call.
                shown = f"arguments JSON cannot show ({type(e).__name__}: {e})"
            log.log(
                number,
                "%s called with %s",
                name,
                shown,
                extra={"tool_name": name, "tool_args": tool_args},
            )
            return tool_args, time.perf_counter()

        def after(tool_args: Dict[str, Any], started: float, error: Optional[Exception]) -> None:
            elapsed = round((time.perf_counter() - started) * 1000.0, 3)
            fields = {
                "tool_name": name,
                "tool_args": tool_args,
                "status": "error" if error else "success",
                "execution_time_ms": elapsed,
                "error": f"{type(error).__name__}: {error}" if error else None,
            }
            if error is None:
                log.log(number, "%s succeeded in %.3f ms", name, elapsed, extra=fields)
            else:
                log.log(
                    number, "%s failed in %.3f ms: %s", name, elapsed, fields["error"], extra=fields
                )

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                tool_args, started = before(args, kwargs)
                try:
                    value = await fn(*args, **kwargs)
                except Exception as e:
                    after(tool_args, started, e)
                    raise
                after(tool_args, started, None)
                return value

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            tool_args, started = before(args, kwargs)
            try:
                value = fn(*args, **kwargs)
            except Exception as e:
                after(tool_args, started, e)
                raise
            after(tool_args, started, None)
            return value

        return wrapper  # type: ignore[return-value]

    return decorate(func) if func is not None else decorate
