"""The background-mode trap's safe way out, with the site's web pages only (docs/ethosce.md).

In background mode a cron job that died stays claimed for `LEASE` seconds, invisible to the import page,
and when it runs again it imports whatever file the importer holds, from row 1. So: Unlock, at once make
the importer hold a header-only file, wait for the lease to end, let cron run once (the dead job consumes
the empty file and is gone), and check that nothing moved. Then the remainder can be imported once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from importconsole.lms.ethosce.errors import UnexpectedPage
from importconsole.lms.ethosce.feeds import FeedsSite, ImporterStatus

LEASE = 30.0  # Drupal 7's queue claim in drupal_cron_run()
MARGIN = 2.0


class TrapNotCleared(UnexpectedPage):
    """The dead job could not be shown gone: nothing more was done after the step named in the sentence."""


@dataclass(frozen=True)
class TrapCleared:
    unlocked: bool
    rows_stored: int  # the holding table's rows (the page's "N imported items total."), unchanged throughout
    cron: str  # "Run cron" or "the site's own cron"
    status: ImporterStatus


async def clear_dead_cron_job(feeds: FeedsSite, importer_id: str, header: Sequence[str], *, crash_seen_at: float,
                              expected_percent: int | None = None, run_cron: bool = True, wait_for_cron: float = 900.0,
                              poll: float = 10.0, clock: Callable[[], float] = time.monotonic,
                              sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> TrapCleared:
    """Unlocks `importer_id`, uploads a header-only file, waits until `crash_seen_at` (the `clock` time the
    console first saw the importer locked after a cron death) + the lease, then lets cron run once: "Run cron"
    on the Cron page when `run_cron`, else waits (up to `wait_for_cron` s) for the site's own cron.
    Raises `TrapNotCleared` when the rows stored or the lock moved on the way."""
    status = await feeds.status(importer_id)
    unlocked = False
    if status.locked:
        outcome = await feeds.unlock(importer_id, expected_percent=expected_percent)
        unlocked, status = outcome.unlocked, outcome.status_after
        if not unlocked:
            raise TrapNotCleared(f"Unlock of {importer_id} did not bring the import button back; nothing else was done.")
    rows = status.items_total  # shown while idle: the holding table's rows
    await feeds.upload_header_only(importer_id, list(header))
    wait = crash_seen_at + LEASE + MARGIN - clock()
    if wait > 0:
        await sleep(wait)
    lease_ended = clock()
    if run_cron:
        await feeds.run_cron()
        how = "Run cron"
    else:
        await _site_cron_after(feeds, lease_ended, wait_for_cron, poll, clock, sleep)
        how = "the site's own cron"
    after = await feeds.status(importer_id)
    if after.locked or after.items_total != rows:
        raise TrapNotCleared(
            f"After cron, {importer_id} is {after.describe()} (it held {rows} rows with a header-only file): the "
            "dead cron job did not consume the empty file as expected. Nothing more was imported; look at the site.")
    return TrapCleared(unlocked, rows or 0, how, after)


async def _site_cron_after(feeds: FeedsSite, since: float, limit: float, poll: float,
                           clock: Callable[[], float], sleep: Callable[[float], Awaitable[None]]) -> None:
    """Waits until the Cron page says cron ran after `since` (a `clock` time)."""
    while True:
        ago = await feeds.cron_last_run()
        if ago is not None and clock() - ago - 1 > since:  # "N sec ago" is whole seconds
            return
        if clock() - since > limit:
            raise TrapNotCleared(f"The site's cron has not run in the {limit:.0f} s after the dead job's lease ended; "
                                 "run it (the Cron page's Run cron button) and try again. The importer holds a "
                                 "header-only file, so nothing is imported meanwhile.")
        await sleep(poll)
