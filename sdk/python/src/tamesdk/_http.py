"""What the sync and async clients share about talking to the server: the
headers, when to retry and how long to wait, and how an answer becomes data
or an exception. The clients do only the I/O."""

from __future__ import annotations

import json
import math
from typing import Any, Dict, Optional, Tuple

import httpx

from ._version import __version__
from .config import Config
from .exceptions import ConnectionException, TameSDKException, ValidationException, from_response

#: Longest wait between two retries, in seconds.
MAX_BACKOFF = 5.0

#: Longest the server holds one long poll for an approval, in seconds; a
#: longer wait is made of several requests.
MAX_POLL_SECONDS = 300


def headers(config: Config) -> Dict[str, str]:
    """The headers of every request."""
    result = {"Accept": "application/json", "User-Agent": f"tamesdk/{__version__}"}
    if config.api_key:
        result["Authorization"] = f"Bearer {config.api_key}"
    return result


def timeout(config: Config) -> httpx.Timeout:
    return httpx.Timeout(config.timeout)


def limits() -> httpx.Limits:
    """One pool per client: calls made one after another reuse one keep-alive
    connection; concurrent calls may open a few more."""
    return httpx.Limits(max_connections=10, max_keepalive_connections=10, keepalive_expiry=30.0)


def backoff(config: Config, attempt: int) -> float:
    """The wait before retry number ``attempt`` (0 for the first)."""
    return float(min(MAX_BACKOFF, config.retry_backoff * (2**attempt)))


def poll_seconds(remaining: float) -> int:
    """The ``wait`` of the next long poll when ``remaining`` seconds are left
    (whole seconds, as the server takes them; at most one more than left)."""
    return int(max(0, min(MAX_POLL_SECONDS, math.ceil(remaining))))


def poll_timeout(config: Config, wait: int) -> httpx.Timeout:
    """A long poll's timeout: the server may hold the answer ``wait`` seconds."""
    return httpx.Timeout(config.timeout, read=config.timeout + wait)


def retryable(error: httpx.TransportError) -> bool:
    """Only a failure to connect is retried: the request never reached the
    server, so sending it again cannot record a decision twice. A timeout
    waiting for the answer is not: the server may already have decided."""
    return isinstance(error, (httpx.ConnectError, httpx.ConnectTimeout))


def connection_error(config: Config, error: httpx.TransportError) -> ConnectionException:
    if isinstance(error, httpx.TimeoutException):
        what = f"no answer within {config.timeout:g} s"
    elif isinstance(error, httpx.ConnectError):
        what = "cannot connect"
    else:
        what = "the connection failed"
    detail = str(error) or type(error).__name__
    return ConnectionException(f"Tame server at {config.api_url}: {what} ({detail})")


def json_kind(value: Any) -> str:
    """What a JSON value is, in words: ``an object``, ``an array``, ..."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return "null"


def result(response: httpx.Response, expect: type = dict) -> Any:
    """The JSON of a successful answer, which must be ``expect`` (an object,
    or an array); the mapped exception otherwise. A successful answer that
    is not what was asked for raises TameSDKException: it is never acted on."""
    body: Any
    try:
        body = response.json() if response.content else None
    except (ValueError, RecursionError):
        # Not JSON, not UTF-8, or nested deeper than Python reads.
        body = None
    if response.is_success:
        what = f"{response.request.method} {response.request.url.path}"
        if body is None:
            raise TameSDKException(
                f"the server answered {response.status_code} to {what} without JSON it can read",
                status_code=response.status_code,
            )
        if not isinstance(body, expect):
            raise TameSDKException(
                f"the server answered {response.status_code} to {what} with "
                f"{json_kind(body)}, not {json_kind(expect())}",
                status_code=response.status_code,
            )
        return body
    raise from_response(response.status_code, body, response.headers.get("Retry-After"))


def encode(body: Any) -> Tuple[Optional[str], Optional[Dict[str, str]]]:
    """A request body as JSON text, and its content type. Values JSON cannot
    hold (paths, dates, objects) are sent as their text.

    A body that cannot be sent as it is raises ValidationException, before
    anything is sent: nested too deeply, containing itself, with a key JSON
    cannot hold, or with two keys of one mapping that JSON writes alike
    (``1`` and ``"1"``), of which the server would keep only the last.
    """
    if body is None:
        return None, None
    try:
        text = json.dumps(body, default=str)
        _check_keys(body)
    except RecursionError:
        raise ValidationException(
            "the request cannot be sent as JSON: it is nested too deeply"
        ) from None
    except (TypeError, ValueError) as e:
        raise ValidationException(f"the request cannot be sent as JSON: {e}") from None
    return text, {"Content-Type": "application/json"}


def _check_keys(value: Any) -> None:
    """ValueError when a mapping in ``value`` has two keys that are one key
    in JSON. Only keys that are not text (numbers, booleans, None) can be:
    JSON writes them as text. Called on what ``json.dumps`` accepted, so it
    is finite and free of cycles."""
    if isinstance(value, dict):
        if not all(isinstance(key, str) for key in value):
            seen: Dict[str, Any] = {}
            for key in value:
                name = key if isinstance(key, str) else json.dumps(key)
                if name in seen:
                    raise ValueError(
                        f"the keys {seen[name]!r} and {key!r} of one mapping would both be "
                        f"{name!r}, and the server would keep only one"
                    )
                seen[name] = key
        for item in value.values():
            _check_keys(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _check_keys(item)


def drop_none(mapping: Dict[str, Optional[Any]]) -> Dict[str, Any]:
    return {k: v for k, v in mapping.items() if v is not None}
