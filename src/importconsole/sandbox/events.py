"""The `/events` stream: every subscriber sees the latest state of everything that changed.

Changes are coalesced per object, so a slow reader never makes the importer wait and never
misses the final state of an import.
"""

from __future__ import annotations

import asyncio
import json


class Subscription:
    def __init__(self) -> None:
        self.pending: dict[tuple[str, object], dict] = {}
        self.ready = asyncio.Event()

    def put(self, kind: str, key, data: dict) -> None:
        self.pending.pop((kind, key), None)  # move to the end: order of last change
        self.pending[(kind, key)] = data
        self.ready.set()

    def drain(self) -> list[tuple[str, dict]]:
        items = [(kind, data) for (kind, _), data in self.pending.items()]
        self.pending.clear()
        self.ready.clear()
        return items


class Broadcaster:
    def __init__(self) -> None:
        self.subscribers: set[Subscription] = set()

    def publish(self, kind: str, key, data: dict | None) -> None:
        if data is None:
            return
        for sub in self.subscribers:
            sub.put(kind, key, data)

    def subscribe(self) -> Subscription:
        sub = Subscription()
        self.subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self.subscribers.discard(sub)


def sse(kind: str, data: dict) -> str:
    return f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"
