"""What the SDK itself costs per call, against a live local server.

Two measures, in microseconds per call:

- **overhead**: the time of a call through the SDK minus the time its HTTP
  round trips took (measured around the transport, body read included), per
  call; median and 99th percentile. This is everything the SDK and httpx do
  on the client side: binding arguments, JSON, building the decision,
  timing and reporting the result. The server's latency, and its noise,
  drop out.
- **vs bare httpx**: the median of the SDK call minus the median of the same
  requests made with httpx alone, the two alternating call by call.

A decorated call makes two requests (the decision, then the result report);
``Client.enforce`` makes one.

    sdk/python/.venv/bin/python sdk/python/bench/overhead.py [--iterations N] [--api-url URL]

Without ``--api-url`` it starts ``tame serve`` (from ``TAME_BIN``, default
``target/debug/tame``) on a free port with a fresh database, a policy that
allows everything, and rate limits out of the way. Not a test: numbers vary
with the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional

import httpx

import tamesdk

REPO_ROOT = Path(__file__).resolve().parents[3]
POLICY = 'version: "bench"\ndefault_action: allow\nrules: []\n'


@contextmanager
def local_server() -> Iterator[str]:
    """``tame serve`` on a free port; yields its URL."""
    binary = Path(os.environ.get("TAME_BIN") or REPO_ROOT / "target" / "debug" / "tame")
    directory = Path(tempfile.mkdtemp(prefix="tame-bench-"))
    (directory / "policy.yaml").write_text(POLICY)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAME_")}
    env.update(
        TAME_BIND="127.0.0.1:0",
        TAME_DATABASE_URL=f"sqlite://{directory / 'tame.db'}",
        TAME_POLICY_PATH=str(directory / "policy.yaml"),
        TAME_WATCH_POLICY="false",
        TAME_LOG_FORMAT="json",
        TAME_LIMITS__OPEN__PER_SECOND="1000000",
        TAME_LIMITS__OPEN__BURST="1000000",
    )
    log = directory / "server.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [str(binary), "serve"], cwd=directory, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"tame serve did not start:\n{log.read_text()}")
            lines = [line for line in log.read_text().splitlines() if "tame is serving" in line]
            if lines:
                yield "http://" + json.loads(lines[0])["fields"]["address"]
                return
            time.sleep(0.02)
    finally:
        process.terminate()
        process.wait()
        shutil.rmtree(directory, ignore_errors=True)


def percentile(values: List[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


class TimedTransport(httpx.BaseTransport):
    """Wraps a client's transport and adds up the time of its round trips."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.spent = 0.0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        started = time.perf_counter()
        response = self.inner.handle_request(request)
        response.read()
        self.spent += time.perf_counter() - started
        return response


class AsyncTimedTransport(httpx.AsyncBaseTransport):
    """The same for an async client."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.spent = 0.0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        started = time.perf_counter()
        response = await self.inner.handle_async_request(request)
        await response.aread()
        self.spent += time.perf_counter() - started
        return response


class Sample:
    """Per-call times of one path, in microseconds."""

    def __init__(self) -> None:
        self.total: List[float] = []
        self.network: List[float] = []
        self.bare: List[float] = []

    def row(self, name: str) -> List[str]:
        overhead = [t - n for t, n in zip(self.total, self.network)]
        return [
            name,
            f"{statistics.median(self.total):.0f}",
            f"{statistics.median(self.network):.0f}",
            f"{statistics.median(overhead):.0f}",
            f"{percentile(overhead, 99):.0f}",
            f"{statistics.median(self.bare):.0f}",
            f"{statistics.median(self.total) - statistics.median(self.bare):.0f}",
        ]


def timed(transport: Any, fn: Callable[[], object], sample: Sample, keep: bool) -> None:
    transport.spent = 0.0
    started = time.perf_counter()
    fn()
    total = time.perf_counter() - started
    if keep:
        sample.total.append(total * 1e6)
        sample.network.append(transport.spent * 1e6)


def bare_timed(fn: Callable[[], None], sample: Sample, keep: bool) -> None:
    started = time.perf_counter()
    fn()
    if keep:
        sample.bare.append((time.perf_counter() - started) * 1e6)


def measure(url: str, iterations: int, warmup: int) -> List[List[str]]:
    session = "bench-bare"
    body = {"tool_name": "read_file", "tool_args": {"path": "/tmp/a"}, "session_id": session}
    report = {"status": "success", "execution_time_ms": 0.001, "result": "x"}
    rows: List[List[str]] = []
    raw = httpx.Client(base_url=url)

    def bare_decision_and_report() -> None:
        decision = raw.post("/api/v1/enforce", json=body).json()
        result_path = f"/api/v1/enforce/{session}/result"
        raw.post(result_path, params={"log_id": decision["log_id"]}, json=report).raise_for_status()

    def bare_decision() -> None:
        raw.post("/api/v1/enforce", json=body).json()

    # A decorated function, through the default client.
    tamesdk.configure(api_url=url, session_id="bench-sdk")

    @tamesdk.enforce_policy
    def read_file(path: str) -> str:
        return "x"

    client = tamesdk.decorators.default_client()
    transport = TimedTransport(client._http._transport)
    client._http._transport = transport
    sample = Sample()
    for i in range(warmup + iterations):
        bare_timed(bare_decision_and_report, sample, i >= warmup)
        timed(transport, lambda: read_file("/tmp/a"), sample, i >= warmup)
    rows.append(sample.row("@enforce_policy, sync (2 requests)"))

    # Client.enforce alone.
    with tamesdk.Client(api_url=url, session_id="bench-enforce") as client:
        transport = TimedTransport(client._http._transport)
        client._http._transport = transport
        sample = Sample()
        for i in range(warmup + iterations):
            bare_timed(bare_decision, sample, i >= warmup)
            timed(
                transport,
                lambda: client.enforce("read_file", {"path": "/tmp/a"}),
                sample,
                i >= warmup,
            )
    rows.append(sample.row("Client.enforce (1 request)"))
    raw.close()
    rows.append(asyncio.run(measure_async(url, iterations, warmup, body, report)))
    return rows


async def measure_async(
    url: str, iterations: int, warmup: int, body: Dict[str, Any], report: Dict[str, Any]
) -> List[str]:
    """A decorated coroutine function, through the default async client."""
    raw = httpx.AsyncClient(base_url=url)

    @tamesdk.enforce_policy
    async def read_file(path: str) -> str:
        return "x"

    client = await tamesdk.decorators.default_async_client()
    transport = AsyncTimedTransport(client._http._transport)
    client._http._transport = transport
    sample = Sample()
    for i in range(warmup + iterations):
        keep = i >= warmup
        started = time.perf_counter()
        decision = (await raw.post("/api/v1/enforce", json=body)).json()
        result_path = f"/api/v1/enforce/{body['session_id']}/result"
        await raw.post(result_path, params={"log_id": decision["log_id"]}, json=report)
        if keep:
            sample.bare.append((time.perf_counter() - started) * 1e6)
        transport.spent = 0.0
        started = time.perf_counter()
        await read_file("/tmp/a")
        if keep:
            sample.total.append((time.perf_counter() - started) * 1e6)
            sample.network.append(transport.spent * 1e6)
    await raw.aclose()
    await client.aclose()
    return sample.row("@enforce_policy, async (2 requests)")


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--api-url", help="a running server whose policy allows read_file")
    args = parser.parse_args(argv)
    if args.api_url:
        rows = measure(args.api_url, args.iterations, args.warmup)
    else:
        with local_server() as url:
            rows = measure(url, args.iterations, args.warmup)
    header = [
        "µs per call",
        "total med",
        "HTTP med",
        "overhead med",
        "overhead p99",
        "bare httpx med",
        "vs bare med",
    ]
    print(f"{args.iterations} calls per path after {args.warmup} warm-up calls")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, *rows]:
        cells = [c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))]
        print("  ".join(cells))


if __name__ == "__main__":
    main()
