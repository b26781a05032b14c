"""Waiting until something is true, without fixed sleeps: the tests' one polling loop, sync and async.

    wait_for(lambda: lms.import_state(1) == "completed", message="import 1 to complete")
    view = await until(lambda: watcher.views.get(1), message="the watcher to see import 1")

The predicate's truthy value is returned; after `timeout` the test fails, naming what it waited for and
what it last saw (`show()` when given: a screen, a process's output; else the predicate's last value).
A predicate may assert on the way (a claim that must never be made while waiting): that fails at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any


class _Deadline:
    """When to give up, and the failure that says what was awaited and what was last seen."""

    def __init__(self, timeout: float, message: str, show: Callable[[], str] | None):
        self.timeout, self.message, self.show = timeout, message, show
        self.at = time.monotonic() + timeout

    def reached(self, value: Any) -> bool:
        """True once `value` is truthy; raises the failure when time is up first."""
        if value:
            return True
        if time.monotonic() > self.at:
            seen = f"\n--- it showed ---\n{self.show()}" if self.show else f" (last value: {value!r})"
            raise AssertionError(f"timed out after {self.timeout:g}s waiting for {self.message}{seen}")
        return False


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02, message: str = "condition",
             *, show: Callable[[], str] | None = None) -> Any:
    """Poll `predicate` until it returns something truthy; return that. Fails the test after `timeout`."""
    deadline = _Deadline(timeout, message, show)
    while not deadline.reached(value := predicate()):
        time.sleep(interval)
    return value


async def until(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02,
                message: str = "condition", *, show: Callable[[], str] | None = None,
                pause: Callable[[float], Awaitable[Any]] = asyncio.sleep) -> Any:
    """`wait_for` on the event loop: between polls `await pause(interval)` (a Pilot's `pilot.pause`
    lets the app process its messages and refresh the screen)."""
    deadline = _Deadline(timeout, message, show)
    while not deadline.reached(value := predicate()):
        await pause(interval)
    return value
