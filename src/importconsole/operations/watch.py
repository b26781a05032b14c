"""Watch every import on the site: one event-stream subscription, polling as the fallback.

Framework-free, so the CLI (`importconsole watch`) and the TUI monitor share it. See
docs/operations.md for how to consume it.

- ONE connection to `GET /events` for all imports, never one per import.
- When the stream drops: poll `GET /imports` + `GET /locks` every `poll_interval` while
  reconnecting with capped exponential backoff. On (re)connect, one poll resyncs imports that
  ended while we were away.
- Hung detection (operations.hung.HungDetector) runs on a local tick, so a silent import is
  noticed even though the server sends nothing about it. Every poll (the first sync and each
  resync after a reconnect) seeds it with how long each import has not moved by the server's
  clock (`server_time` of `GET /imports`), so an import stuck before the console opened is hung
  on the first sync.
- The watcher only reads. It never submits, retries a submit, or unlocks anything.
- A refused token (401/403) is not a network blip: the watcher stops, `fatal` holds the LMS's
  sentence (RELIABILITY fault 11), instead of retrying for ever.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from dataclasses import dataclass, replace
from typing import Any
from collections.abc import AsyncIterator, Awaitable, Callable

from importconsole.lms.backoff import Backoff  # the console's one backoff (re-exported here)
from importconsole.lms.errors import Forbidden, Unauthorized, Unreachable
from importconsole.lms.models import FINISHED_STATES, Import, ImportState, Lock, ServerEvent
from importconsole.lms.port import LmsBackend, capabilities_of
from importconsole.operations.hung import Clock, Diagnosis, HungDetector, HungImport, moved_ago

ACTIVE_STATES = (ImportState.QUEUED, ImportState.RUNNING)


class RateWindow:
    """Rows per second over the last `window` seconds of samples."""

    def __init__(self, window: float = 10.0) -> None:
        self.window = window
        self._samples: deque[tuple[float, int]] = deque()

    def add(self, t: float, rows: int) -> None:
        if self._samples and rows < self._samples[-1][1]:
            self._samples.clear()  # a different count (server restart, new import): start over
        self._samples.append((t, rows))
        # Keep one sample at or before the window's start so the rate spans the whole window.
        while len(self._samples) > 2 and self._samples[1][0] <= t - self.window:
            self._samples.popleft()

    MIN_SPAN = 0.5  # two counts read a few ms apart say nothing yet ("0.0 rows/s" for an import at 10 rows/s)

    def rate(self, now: float) -> float | None:
        """None until two samples exist that span MIN_SPAN seconds; 0.0 when nothing moved in the window."""
        if len(self._samples) < 2 or self._samples[-1][0] - self._samples[0][0] < self.MIN_SPAN:
            return None
        first_t, first_rows = self._samples[0]
        span = now - first_t
        if span <= 0:
            return None
        return (self._samples[-1][1] - first_rows) / span

    def eta(self, now: float, rows_left: int) -> float | None:
        rate = self.rate(now)
        if rows_left <= 0:
            return 0.0
        if not rate or rate <= 0:
            return None
        return rows_left / rate


@dataclass(frozen=True)
class ImportView:
    """What the admin sees of one import, at one moment."""

    import_id: int
    importer: str
    state: str
    rows_processed: int
    rows_total: int
    rows_failed: int = 0
    rows_held: int = 0
    course_external_id: str | None = None
    file_name: str = ""
    created_by: str = ""
    created_at: str | None = None
    rate: float | None = None  # rows/s over the rate window
    eta_seconds: float | None = None
    holds_lock: bool = False  # this import holds its importer's lock
    hung: HungImport | None = None
    diagnosis: Diagnosis | None = None
    error: str | None = None

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES

    @property
    def is_hung(self) -> bool:
        return self.hung is not None

    @property
    def shown_state(self) -> str:
        """The state as the console shows it: the server never says "hung", we do."""
        return "hung" if self.hung else self.state

    @property
    def percent(self) -> float:
        return 100.0 * self.rows_processed / self.rows_total if self.rows_total else 0.0

    def describe(self) -> str:
        parts = [f"import {self.import_id}", self.shown_state,
                 f"{self.rows_processed}/{self.rows_total} rows"]
        if not self.finished and self.rate is not None:
            parts.append(f"{self.rate:.1f} rows/s")
        if not self.finished and self.eta_seconds is not None and not self.hung:
            parts.append(f"ETA {format_duration(self.eta_seconds)}")
        parts.append(f"{self.importer} importer" + (" (locked by it)" if self.holds_lock else ""))
        if self.created_by:
            parts.append(f"by {self.created_by}")
        text = ", ".join(parts)
        if self.hung:
            text += f"; no progress for {format_duration(self.hung.stalled_for)}, stopped at row {self.hung.stopped_at_row}"
            if self.diagnosis is not None:
                text += f": {self.diagnosis.summary()}"
        if self.error:
            text += f"; {self.error}"
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "import_id": self.import_id,
            "importer": self.importer,
            "state": self.shown_state,
            "server_state": self.state,
            "rows_processed": self.rows_processed,
            "rows_total": self.rows_total,
            "rows_failed": self.rows_failed,
            "rows_held": self.rows_held,
            "course_external_id": self.course_external_id,
            "file_name": self.file_name,
            "created_by": self.created_by,
            "rate": None if self.rate is None else round(self.rate, 2),
            "eta_seconds": None if self.eta_seconds is None else round(self.eta_seconds, 1),
            "holds_lock": self.holds_lock,
            "hung": self.hung is not None,
            "stopped_at_row": self.hung.stopped_at_row if self.hung else None,
            "stalled_for": round(self.hung.stalled_for, 1) if self.hung else None,
            "diagnosis": self.diagnosis.to_json() if self.diagnosis else None,
            "error": self.error,
        }


def format_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


@dataclass(frozen=True)
class LmsUnseen:
    """The LMS is not being seen: since when, why, and what to do. While it lasts, no count the
    console shows (running, hung) is known: never "0 hung" for an LMS it cannot see."""

    since: float  # wall clock (time.time()): the last moment the LMS answered (or the first failure)
    why: str  # the LMS error's sentence
    what_to_do: str
    lms: str = "the LMS"  # how the sentences name it (EthosCE: "the site at HOST")

    def since_text(self) -> str:
        return time.strftime("%H:%M:%S UTC", time.gmtime(self.since))

    def sentence(self, now: float | None = None) -> str:
        """`The LMS has not been seen for 1m05s (since 02:10:03 UTC): <why> <what to do>`"""
        age = format_duration((time.time() if now is None else now) - self.since)
        return (f"{_capital(self.lms)} has not been seen for {age} (since {self.since_text()}): {self.why.rstrip('.')}. "
                f"{self.what_to_do} Until it answers, what the imports are doing (and whether any is hung) "
                f"is not known; they go on on {self.lms}.")

    def to_json(self, now: float | None = None) -> dict[str, Any]:
        return {"since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.since)),
                "unseen_for": round((time.time() if now is None else now) - self.since, 1),
                "why": self.why, "what_to_do": self.what_to_do}


def what_to_do(error: BaseException, lms: str = "the LMS") -> str:
    """For an LMS that does not answer as it should: the admin's next step (`lms`: how to name it)."""
    if isinstance(error, Unauthorized):
        return "The token was refused: store a fresh one with `importconsole login` and start again."
    if isinstance(error, Forbidden):
        return "Your LMS user lacks the role this needs: ask a site admin."
    if isinstance(error, Unreachable):
        return (f"Check the network (VPN, proxy) and that {lms} is up; the console keeps trying and says when it "
                "answers again.")
    return f"{_capital(lms)} answers with errors: ask its administrators; the console keeps trying."


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


@dataclass(frozen=True)
class WatchUpdate:
    """One change: `kind` is "import" (view set), "lock" (lock set), "connection", or "lms"
    (`unseen` set: the LMS stopped answering; None: it answers again)."""

    kind: str
    view: ImportView | None = None
    lock: Lock | None = None
    connection: str = ""  # "live" (event stream), "polling" (stream down), "stopped"
    unseen: LmsUnseen | None = None


Diagnoser = Callable[[Import], Awaitable[Diagnosis]]


class ImportWatcher:
    """Follows every import on the site. Run it with `await watcher.run()` (or as a task) and read
    `views`, `changes()` or a callback registered with `on_change`.

    `client` needs `events()` (async iterator of ServerEvent), `list_imports(state=...)`,
    `get_import(id)` and `locks()`, as lms.client.LmsClient has.
    """

    def __init__(self, client: LmsBackend, *, hung_after: float = 60.0, poll_interval: float = 2.0,
                 rate_window: float = 10.0, clock: Clock = time.monotonic,
                 backoff: Backoff | None = None, diagnose: Diagnoser | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep, silent_after: float = 20.0) -> None:
        self.client = client
        self.poll_interval = poll_interval
        # A frozen LMS (it takes the connection and sends nothing) raises no error for minutes:
        # this long without a word, it counts as not seen. Never shorter than a few polls.
        self.silent_after = max(silent_after, 3 * poll_interval)
        self.detector = HungDetector(hung_after, clock)
        self._clock = clock
        self._rate_window = rate_window
        self._backoff = backoff or Backoff()
        self._diagnose = diagnose
        self._sleep = sleep
        self._imports: dict[int, Import] = {}
        self._rates: dict[int, RateWindow] = {}
        self._diagnoses: dict[int, Diagnosis] = {}
        self._diagnosing: set[int] = set()
        self.views: dict[int, ImportView] = {}
        self.locks: dict[str, Lock] = {}
        self.connection = "polling"
        self.stream_connects = 0  # how many times the event stream was (re)opened
        self.polls = 0
        self.last_error: str | None = None
        self.fatal: Exception | None = None  # why the watcher stopped by itself (token refused)
        self.unseen: LmsUnseen | None = None  # set while reads of the LMS fail (since when, why)
        self.last_seen: float | None = None  # wall clock of the LMS's last answer
        self._subscribers: list[asyncio.Queue[WatchUpdate]] = []
        self._callbacks: list[Callable[[WatchUpdate], None]] = []
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    # -- consuming ---------------------------------------------------------------------------

    def on_change(self, callback: Callable[[WatchUpdate], None]) -> None:
        """Call `callback(update)` on every change (on the watcher's event loop; keep it quick)."""
        self._callbacks.append(callback)

    async def changes(self) -> AsyncIterator[WatchUpdate]:
        """Every change from now on, until the watcher stops."""
        queue: asyncio.Queue[WatchUpdate] = asyncio.Queue()
        self._subscribers.append(queue)
        try:
            while True:
                update = await queue.get()
                yield update
                if update.kind == "connection" and update.connection == "stopped":
                    return
        finally:
            self._subscribers.remove(queue)

    def snapshot(self) -> list[ImportView]:
        """Every import seen, newest first."""
        return sorted(self.views.values(), key=lambda v: v.import_id, reverse=True)

    # -- running -----------------------------------------------------------------------------

    async def run(self) -> None:
        """Watch until `stop()` (which may come before this starts). Never raises for network
        trouble: it reconnects or polls. A stopped watcher does not start again; make a new one."""
        self._tasks = [asyncio.create_task(self._stream_loop()), asyncio.create_task(self._tick_loop()),
                       asyncio.create_task(self._silence_loop())]
        try:
            await self._stopping.wait()
        finally:
            for task in self._tasks:
                task.cancel()
            for task in self._tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            self._set_connection("stopped")

    def stop(self) -> None:
        self._stopping.set()

    async def poll_once(self) -> None:
        """Read `/imports` (active ones and the ones we follow) and `/locks` once."""
        self.polls += 1
        active: dict[int, tuple[Import, str | None]] = {}
        for state in ACTIVE_STATES:
            page = await self.client.list_imports(state=state)
            self._seen()  # it answers: said before what it says is applied
            for item in page.items:
                active[item.id] = (item, page.server_time)
        for item, server_time in active.values():
            self.apply_import(item, server_time=server_time)
        # Imports we followed that are no longer active ended while we were not told.
        for import_id, known in list(self._imports.items()):
            if known.state in ACTIVE_STATES and import_id not in active:
                self.apply_import(await self.client.get_import(import_id))
        for lock in await self.client.locks():
            self.apply_lock(lock)

    async def follow(self, import_id: int) -> None:
        """Make sure one import is known even if it is not active (e.g. `watch 42` after it ended)."""
        self.apply_import(await self.client.get_import(import_id))

    # -- applying what the server says (also used directly by tests and the TUI) ---------------

    def apply_import(self, item: Import, *, server_time: str | None = None) -> None:
        """`server_time`: the server's clock when it read `item` (a list's `server_time`); with it
        the hung detector knows how long the import has not moved, without trusting our clock."""
        self._imports[item.id] = item
        now = self._clock()
        if not item.finished:
            self._rates.setdefault(item.id, RateWindow(self._rate_window)).add(now, item.rows_processed)
        age = moved_ago(server_time=server_time, last_progress_at=item.last_progress_at,
                        started_at=item.started_at, rows_processed=item.rows_processed)
        self.detector.observe(item.id, item.rows_processed, state=item.state,
                              importer=item.importer, rows_total=item.rows_total, moved_ago=age)
        self._refresh(item.id)

    def apply_lock(self, lock: Lock) -> None:
        previous = self.locks.get(lock.importer)
        self.locks[lock.importer] = lock
        self.detector.observe_lock(lock.importer, lock.import_id if lock.locked else None)
        if previous != lock:
            self._publish(WatchUpdate("lock", lock=lock, connection=self.connection))
        for import_id in {lock.import_id, previous.import_id if previous else None} - {None}:
            if import_id in self._imports:
                self._refresh(import_id)

    def tick(self) -> None:
        """Re-evaluate rates and hung state against the clock (no network)."""
        now = self._clock()
        for import_id, item in self._imports.items():
            if not item.finished:
                if self.unseen is None:  # unseen: the last count read is not a sample of now
                    self._rates.setdefault(import_id, RateWindow(self._rate_window)).add(now, item.rows_processed)
                self._refresh(import_id)

    def _refresh(self, import_id: int) -> None:
        item = self._imports[import_id]
        now = self._clock()
        rates = self._rates.get(import_id)
        rate = rates.rate(now) if rates and not item.finished else None
        eta = rates.eta(now, item.rows_total - item.rows_processed) if rates and not item.finished else None
        # An LMS that is not seen says nothing about progress: no hung verdict until it answers.
        hung = None if item.finished or self.unseen is not None else self.detector.hung(import_id)
        lock = self.locks.get(item.importer)
        view = ImportView(
            import_id=item.id, importer=item.importer, state=item.state,
            rows_processed=item.rows_processed, rows_total=item.rows_total,
            rows_failed=item.rows_failed, rows_held=item.rows_held,
            course_external_id=item.course_external_id, file_name=item.file_name,
            created_by=item.created_by, created_at=item.created_at, rate=rate, eta_seconds=eta,
            # The LMS frees the lock as the import ends; its lock event comes just after (docs/api.md).
            holds_lock=bool(lock and lock.locked and lock.import_id == item.id and not item.finished),
            hung=hung, diagnosis=self._diagnoses.get(import_id) if hung else None, error=item.error,
        )
        previous = self.views.get(import_id)
        self.views[import_id] = view
        if previous is None or _differs(previous, view):
            self._publish(WatchUpdate("import", view=view, connection=self.connection))
        if hung and self._diagnose and import_id not in self._diagnoses and import_id not in self._diagnosing:
            self._diagnosing.add(import_id)
            asyncio.get_running_loop().create_task(self._run_diagnosis(item, self._diagnose))

    async def _run_diagnosis(self, item: Import, diagnose: Diagnoser) -> None:
        try:
            self._diagnoses[item.id] = await diagnose(item)
        except Exception as error:  # the view says so; a broken diagnosis must not stop watching
            self.last_error = f"could not diagnose import {item.id}: {error}"
        finally:
            self._diagnosing.discard(item.id)
        if item.id in self._imports:
            self._refresh(item.id)

    # -- loops -------------------------------------------------------------------------------

    async def _stream_loop(self) -> None:
        if not capabilities_of(self.client).event_stream:
            return  # this LMS pushes nothing: the tick loop polls
        while not self._stopping.is_set():
            try:
                events = self.client.events()
                self.stream_connects += 1
                first = True
                async for event in events:
                    if first:
                        first = False
                        self._backoff.reset()
                        self._set_connection("live")
                        await self._resync()
                    self._seen()
                    self._apply_event(event)
                raise ConnectionError("the event stream ended")
            except asyncio.CancelledError:
                raise
            except (Unauthorized, Forbidden) as error:
                self._fail(error)
                return
            except Exception as error:
                self.last_error = f"event stream: {error}"
                self._set_connection("polling")
                await self._sleep(self._backoff.next_delay())

    def _fail(self, error: Exception) -> None:
        """Stop for good: retrying cannot fix a refused token."""
        self.fatal, self.last_error = error, str(error)
        self._not_seen(error)
        self.stop()

    def _not_seen(self, error: BaseException) -> None:
        if self.unseen is None:
            self.unseen = LmsUnseen(self.last_seen or time.time(), str(error), what_to_do(error))
            # The rate is not known while it is not seen, and a window spanning the outage would be no rate.
            self._rates.clear()
            self._publish(WatchUpdate("lms", connection=self.connection, unseen=self.unseen))
            for import_id in list(self._imports):
                self._refresh(import_id)  # hung verdicts are withdrawn while it is not seen
        elif str(error) != self.unseen.why:  # why changed (refused -> 500...): same outage, new reason
            self.unseen = replace(self.unseen, why=str(error), what_to_do=what_to_do(error))
            self._publish(WatchUpdate("lms", connection=self.connection, unseen=self.unseen))

    def _seen(self) -> None:
        self.last_seen = time.time()
        if self.unseen is not None:
            self.unseen = None
            self._publish(WatchUpdate("lms", connection=self.connection, unseen=None))

    async def _resync(self) -> None:
        with contextlib.suppress(Exception):
            await self.poll_once()

    def _apply_event(self, event: ServerEvent) -> None:
        if event.kind == "import" and isinstance(event.data, Import):
            self.apply_import(event.data)
        elif event.kind == "lock" and isinstance(event.data, Lock):
            self.apply_lock(event.data)

    async def _tick_loop(self) -> None:
        while not self._stopping.is_set():
            if self.connection != "live":
                try:
                    await self.poll_once()
                except asyncio.CancelledError:
                    raise
                except (Unauthorized, Forbidden) as error:
                    self._fail(error)
                    return
                except Exception as error:
                    self.last_error = f"polling: {error}"
                    self._not_seen(error)
            self.tick()
            await self._sleep(self.poll_interval)

    async def _silence_loop(self) -> None:
        """Silence is the only sign of a frozen LMS. A quiet event stream is asked (one poll) before
        its quiet counts: no import running means no events, not an LMS gone."""
        started = time.time()
        probe: asyncio.Task[None] | None = None
        while not self._stopping.is_set():
            await asyncio.sleep(min(1.0, self.silent_after / 4))  # not self._sleep: tests make that instant
            quiet = time.time() - (self.last_seen or started)
            if quiet > self.silent_after and self.unseen is None:
                self._not_seen(Unreachable("it takes the connection but has sent nothing back"))
            # Asked again while not seen too: a thawed LMS is seen at once, not when the stream's read times out.
            if quiet > self.silent_after / 2 and self.connection == "live" and (probe is None or probe.done()):
                probe = asyncio.create_task(self._probe())
        if probe is not None:
            probe.cancel()

    async def _probe(self) -> None:
        with contextlib.suppress(Exception):  # a failure is the silence loop's to judge, by time
            await asyncio.wait_for(self.poll_once(), self.silent_after)

    def _set_connection(self, state: str) -> None:
        if state != self.connection:
            self.connection = state
            self._publish(WatchUpdate("connection", connection=state))

    def _publish(self, update: WatchUpdate) -> None:
        for queue in self._subscribers:
            queue.put_nowait(update)
        for callback in self._callbacks:
            callback(update)


def _differs(a: ImportView, b: ImportView) -> bool:
    # Rate and ETA wobble on every tick; they alone do not make a change worth publishing.
    return replace(a, rate=None, eta_seconds=None) != replace(b, rate=None, eta_seconds=None)


DIAGNOSIS_WAIT = 15.0  # seconds a hung import waits for its diagnosis: a failed one must not keep a follower waiting


class UntilSettled:
    """Which imports a follower (`importconsole watch`) waits for, and whether it may stop: one import
    (`import_id`), or every import active when it started plus every one that starts meanwhile.
    Settled when each has ended, or is hung and diagnosed (or its diagnosis has not come within
    `diagnosis_wait` seconds of the hung verdict)."""

    def __init__(self, watcher: ImportWatcher, import_id: int | None = None, *,
                 diagnosis_wait: float = DIAGNOSIS_WAIT, clock: Clock = time.monotonic) -> None:
        self.watcher = watcher
        self.import_id = import_id
        self.diagnosis_wait = diagnosis_wait
        self._clock = clock
        self.followed = {v.import_id for v in watcher.views.values() if not v.finished}
        self._hung_since: dict[int, float] = {}

    @property
    def idle(self) -> bool:
        """Following every import, and none is queued or running: nothing to wait for."""
        return self.import_id is None and not self.followed

    def targets(self) -> list[ImportView]:
        if self.import_id is not None:
            view = self.watcher.views.get(self.import_id)
            return [view] if view else []
        return [v for v in self.watcher.views.values() if v.import_id in self.followed]

    def still_going(self) -> set[int]:
        return {v.import_id for v in self.targets() if not v.finished}

    def concerns(self, view: ImportView) -> bool:
        """Is this update about an import followed? (Following every import, one that starts is.)"""
        if self.import_id is None and not view.finished:
            self.followed.add(view.import_id)
        return view.import_id == self.import_id or view.import_id in self.followed

    def view_settled(self, view: ImportView) -> bool:
        if view.finished:
            return True
        if view.hung:
            since = self._hung_since.setdefault(view.import_id, self._clock())
            return view.diagnosis is not None or self._clock() - since > self.diagnosis_wait
        return False

    def settled(self) -> bool:
        current = self.targets()
        return bool(current) and all(self.view_settled(v) for v in current)
