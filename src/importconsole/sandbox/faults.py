"""The test-only fault switch (docs/api.md): faults a healthy server never produces, on demand.

Only mounted with `importconsole sandbox --faults`.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

KINDS = ("drop_after_body", "error_500_before", "error_500_after", "status", "slow", "truncated_body", "non_json")


@dataclass
class Fault:
    kind: str
    times: int = 1
    path_prefix: str = "/api/v1/imports"
    method: str | None = "POST"
    seconds: float = 0.0
    status: int = 503
    retry_after: str | None = None
    exact: bool = False  # path_prefix must be the whole path (so /users does not catch /users/lookup)

    def matches(self, method: str, path: str) -> bool:
        where = path == self.path_prefix if self.exact else path.startswith(self.path_prefix)
        return self.times > 0 and where and (self.method is None or self.method == method)


def parse_fault(body) -> Fault:
    """Raises ValueError with a sentence when the body does not describe a fault."""
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    kind = body.get("kind")
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}")
    fault = Fault(kind=kind)
    try:
        fault.times = int(body.get("times", 1))
        fault.path_prefix = str(body.get("path_prefix", "/api/v1/imports"))
        method = body.get("method", "POST")
        fault.method = str(method).upper() if method not in (None, "", "*") else None
        fault.seconds = float(body.get("seconds", 0) or 0)
        fault.exact = bool(body.get("exact", False))
        fault.status = int(body.get("status", 503))
        retry_after = body.get("retry_after")
        fault.retry_after = None if retry_after is None else str(retry_after)
    except (TypeError, ValueError, OverflowError):  # int(1e400) overflows
        raise ValueError("times, status and seconds must be numbers") from None
    if not 100 <= fault.status <= 599:
        raise ValueError("status must be an HTTP status code")
    if not 0 <= fault.seconds <= 3600 or not 0 <= fault.times <= 10**9:  # NaN fails both comparisons
        raise ValueError("seconds must be 0 to 3600 and times 0 to 1000000000")
    return fault


class FaultSwitch:
    """ASGI middleware: the outermost layer, so it can lose responses the app did send."""

    def __init__(self, app):
        self.app = app
        self.faults: list[Fault] = []

    def take(self, method: str, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.matches(method, path):
                fault.times -= 1
                return fault
        return None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"].startswith("/api/v1/_faults"):
            return await self.app(scope, receive, send)
        fault = self.take(scope["method"], scope["path"])
        if fault is None:
            return await self.app(scope, receive, send)
        kind = fault.kind
        if kind == "slow":
            # For POST /imports the handler sleeps while holding its Idempotency-Key (so a
            # concurrent request with the same key meets 409); elsewhere sleep before handling.
            if scope["method"] == "POST" and scope["path"].rstrip("/") == "/api/v1/imports":
                scope["sandbox.delay"] = fault.seconds
            else:
                await asyncio.sleep(fault.seconds)
            return await self.app(scope, receive, send)
        if kind == "error_500_before":
            return await _json(send, 500, {"error": "server_error", "message": "Injected fault: 500 before handling."})
        if kind == "status":
            headers = [(b"retry-after", fault.retry_after.encode("latin-1", "replace"))] if fault.retry_after is not None else []
            return await _json(send, fault.status, {"error": "injected", "message": f"Injected fault: status {fault.status}."}, headers)
        # The rest let the app handle (and commit) the request, then spoil the answer.
        status, body = await _capture(self.app, scope, receive)
        if kind == "error_500_after":
            return await _json(send, 500, {"error": "server_error", "message": "Injected fault: 500 after handling."})
        if kind == "truncated_body":
            cut = body[: max(1, len(body) // 2)]
            return await _raw(send, 200, cut, b"application/json")
        if kind == "non_json":
            return await _raw(send, 200, b"<html><body><h1>Service temporarily unavailable</h1></body></html>", b"text/html")
        # drop_after_body: close the connection without a response.
        transport = getattr(getattr(send, "__self__", None), "transport", None)
        if transport is not None:
            transport.abort()
            await asyncio.sleep(0.01)  # let the server see the disconnect, so it does not log a missing response
            return
        # Fallback: start a response and break it; the client sees no usable answer.
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"1000")]})
        raise ConnectionAbortedError("injected fault: connection dropped")


async def _capture(app, scope, receive) -> tuple[int, bytes]:
    status = 500
    chunks: list[bytes] = []

    async def send(message):
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)


async def _json(send, status: int, data: dict, headers=()) -> None:
    await _raw(send, status, json.dumps(data).encode(), b"application/json", headers)


async def _raw(send, status: int, body: bytes, content_type: bytes, headers=()) -> None:
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode()), *headers],
    })
    await send({"type": "http.response.body", "body": body})
