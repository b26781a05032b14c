"""Monitor: every import on the site, live, from operations.watch.ImportWatcher (one event
stream, polling when it drops). Hung imports stand out; `u` opens the recover plan."""

from __future__ import annotations

from collections import deque

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import ModalScreen
from textual.widgets import Sparkline, Static

from importconsole.lms.models import ImportState
from importconsole.operations.watch import ImportView, ImportWatcher
from importconsole.tui.screens.base import ConsoleScreen
from importconsole.tui.text import count, said, shown
from importconsole.tui.widgets.importtable import ImportTable

RATE_HISTORY = 40
STATE_VARIABLES = {
    "hung": "import-hung", "running": "import-running", "queued": "import-queued",
    "completed": "import-done", "completed_with_errors": "import-failed", "failed": "import-failed",
    "unlocked": "import-queued",
}


class MonitorScreen(ConsoleScreen):
    TITLE_TEXT = "Monitor"
    BINDINGS = [
        Binding("u", "recover", "Unlock + re-import"),
        Binding("h", "next_hung", "Next hung"),
        Binding("r", "resync", "Refresh now"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.views: list[ImportView] = []
        self._rates: dict[int, deque[float]] = {}
        self._dirty = True
        self.following: int | None = None  # a re-import started by recover: the cursor follows it
        self._painted: tuple = ()  # what the last paint showed: _paint_key()
        self._locks: dict = {}
        self._connection = ""
        self.importer_views: dict = {}  # EthosCE: importer id -> operations.ethosce.ImporterView

    def compose(self) -> ComposeResult:
        yield from self.compose_title()
        yield Static("", id="monitor-status", classes="status-line", markup=False)
        yield ImportTable(id="imports")
        yield Sparkline([], id="rate-sparkline")
        yield Static("", id="import-detail", markup=False)
        yield from self.compose_footer()

    def on_mount(self) -> None:
        self.watch(self.app, "hung_ids", self.hung_changed, init=False)
        self.watch(self.app, "lms_unseen", self.unseen_changed, init=False)
        self.set_interval(0.25, self._repaint)
        session = self.app.session
        profile = session.profile_config if session is not None else None
        if session is None:
            self.query_one("#monitor-status", Static).update("Not connected: press n for Connect.")
        elif profile is not None and profile.kind == "ethosce":
            self._watch_importers(profile.poll_interval)

    def _recover_importer(self) -> None:
        """`u` on an EthosCE site: the hung (else locked) importer's recover plan."""
        from importconsole.tui.screens.ethosce_recover import EthosceRecoverScreen

        views = list(self.importer_views.values())
        chosen = next((v for v in views if v.hung), None) or next((v for v in views if v.status.locked), None)
        if chosen is None:
            self.notify("No importer is locked: there is nothing to recover.", severity="warning")
            return
        self.app.push_screen(EthosceRecoverScreen(chosen.importer_id, hung=bool(chosen.hung)))

    @work(exclusive=True, group="importers", exit_on_error=False)
    async def _watch_importers(self, poll_interval: float) -> None:
        """An EthosCE site has no import ids: show each importer's state (idle, importing N % with rows
        where the console has the file, queued for cron, hung) from its page and the stored rows."""
        import asyncio

        from importconsole.operations.ethosce import HungWatch, last_own_upload, own_file, read_file_rows, read_view

        client, journal = self.app.lms(), self.app.journal()
        watches = {i: HungWatch(self.app.hung_after) for i in client.importer_ids()}
        status, detail = self.query_one("#monitor-status", Static), self.query_one("#import-detail", Static)
        status.styles.height = "auto"  # a hung importer's line is longer than 80 columns: wrapped, read whole
        while True:
            lines = []
            try:
                for importer_id, hung_watch in watches.items():
                    own = last_own_upload(journal, client.base_url, importer_id)
                    path = own_file(own)
                    rows = await asyncio.to_thread(read_file_rows, path) if path else None
                    view = hung_watch.observe(await read_view(client, importer_id, own, rows),
                                              batch_died=own is not None and own.batch_outcome == "died")
                    self.importer_views[importer_id] = view
                    lines.append(view.describe())
            except Exception as error:  # a sentence (refused password, unreachable site): said, and tried again
                lines.append(str(error))
            status.update(shown(" · ".join(lines)))
            detail.update("Hung: u shows the recover plan (unlock, then the rows not stored)."
                          if any(": hung " in line for line in lines) else "")
            await asyncio.sleep(poll_interval)

    @property
    def watcher(self) -> ImportWatcher | None:
        """The app's watcher: it runs from the console's start, so hangs are noticed on any screen."""
        return self.app.watcher

    # -- painting: a few times a second, never while a dialog is open ----------------------
    def _repaint(self) -> None:
        if isinstance(self.app.screen, ModalScreen) or not self.is_current:
            return  # the admin is reading a dialog: nothing moves under it
        watcher = self.watcher
        if watcher is None:
            return
        for view in watcher.snapshot():
            if not view.finished and view.rate is not None:
                history = self._rates.setdefault(view.import_id, deque(maxlen=RATE_HISTORY))
                history.append(view.rate)
        key = self._paint_key()
        unseen = self.app.lms_unseen is not None or watcher.last_seen is None  # its age and wait are shown
        if key == self._painted and not self._dirty and not unseen \
                and not any(not v.finished for v in watcher.snapshot()):
            return
        self._dirty, self._painted = False, key
        self.show_views(watcher.snapshot(), watcher.locks, watcher.connection)

    def _paint_key(self) -> tuple:
        """A change of this repaints: the watcher's changes, and the LMS's first answer (an empty
        LMS reports no change, and the screen would say "Asking the LMS" for ever)."""
        watcher = self.watcher
        return (self.app.watch_generation, watcher is not None and watcher.last_seen is not None)

    def hung_changed(self) -> None:
        """The watcher's hung verdict changed (the app's hung_ids): repaint even under a dialog, or
        the header and rows would contradict the title line, which says it at once."""
        watcher = self.watcher
        if watcher is not None and self.is_attached:
            self._dirty, self._painted = False, self._paint_key()
            self.show_views(watcher.snapshot(), watcher.locks, watcher.connection)

    def show_views(self, views: list[ImportView], locks: dict, connection: str) -> None:
        """Paint these imports (the watcher's snapshot; fixed ones in snapshot tests)."""
        self.views = views
        self._locks, self._connection = locks, connection
        self._fill_table()
        self._show_status()
        self._show_detail()

    def _fill_table(self) -> None:
        keep = self.following if any(v.import_id == self.following for v in self.views) else None
        self.query_one("#imports", ImportTable).set_views(self.views, keep=keep)

    def _style_of(self, variable: str) -> str:
        return f"bold {self.app.theme_variables.get(variable, '')}".strip()

    def _style(self, view: ImportView) -> str:
        variable = STATE_VARIABLES.get(view.shown_state, "import-queued")
        colour = self.app.theme_variables.get(variable, "")
        return f"bold {colour}" if view.is_hung else colour

    def unseen_changed(self) -> None:
        """The LMS stopped answering, or answers again (the app's lms_unseen): said at once."""
        if self.is_attached:
            self._show_status()
            self._show_detail()

    def _lms_state(self) -> str | None:
        """A status line when the counts are not known: the LMS not seen, or not yet heard from."""
        if self.app.session is None:
            return "Not connected: press n for Connect."
        unseen = self.app.lms_unseen
        if unseen is not None:
            return f"LMS NOT SEEN since {unseen.since_text()}: imports and hangs not known (why: below)"
        watcher = self.watcher
        if watcher is not None and watcher.last_seen is None and self.app.live:
            return "Asking the LMS for its imports..."
        return None

    def _show_status(self) -> None:
        state = self._lms_state()
        if state is not None:  # never "0 active · 0 hung" for an LMS the console cannot see
            self.query_one("#monitor-status", Static).update(state)
            return
        running = sum(1 for v in self.views if not v.finished)
        hung = [v for v in self.views if v.is_hung]
        locks = ", ".join(
            f"{name}: {'locked by ' + str(lock.import_id) if lock.locked else 'free'}"
            for name, lock in sorted(self._locks.items())
        )
        link = {"live": "live", "polling": "polling (event stream down)", "stopped": "stopped"}.get(
            self._connection, "")
        text = f"{running} active · {len(hung)} hung · {locks} · {link}"
        self.query_one("#monitor-status", Static).update(text)

    def _show_detail(self) -> None:
        view = self.selected_view()
        detail = self.query_one("#import-detail", Static)
        sparkline = self.query_one("#rate-sparkline", Sparkline)
        unseen = self.app.lms_unseen
        if unseen is not None:  # why, since when and what to do, before any import of the last known list
            from importconsole.tui.screens.base import unseen_sentence

            text = Text(unseen_sentence(self.app, unseen), style=self._style_of("import-hung"))
            if view is not None:
                text.append(f"\nLast seen: import {view.import_id} {view.shown_state}, "
                            f"{view.rows_processed}/{view.rows_total} rows.")
            detail.update(text)
            sparkline.display = False
            return
        if view is None:
            waiting = self._lms_state()
            detail.update(waiting if waiting else ("No imports yet." if not self.views else ""))
            sparkline.display = False
            return
        history = list(self._rates.get(view.import_id, []))
        sparkline.display = len(history) >= 2 and max(history) > 0  # no bar chart of nothing
        sparkline.data = history
        lock = f"{view.importer} importer" + (" (locked by it)" if view.holds_lock else "")
        lines = [f"Import {view.import_id} · {shown(view.file_name)} · {view.shown_state} · "
                 f"{view.rows_processed}/{view.rows_total} rows · {lock} · by {shown(view.created_by)}"]
        if view.error:
            lines.append(shown(view.error))
        if view.hung is not None:
            where = f"Stopped at row {view.hung.stopped_at_row}"
            cause = view.diagnosis.summary() if view.diagnosis is not None else "looking for the cause..."
            lines.append(f"{where}: {shown(cause)}")
            lines.append("Press u to unlock and re-import the rows not yet processed.")
        detail.update(Text("\n".join(lines), style=self._style(view) if view.is_hung else ""))

    def on_import_table_highlighted(self, event: ImportTable.Highlighted) -> None:
        followed_shown = any(v.import_id == self.following for v in self.views)
        if followed_shown and event.view is not None and event.view.import_id != self.following:
            self.following = None  # the admin moved to another import
        self._show_detail()

    # -- selection and actions ---------------------------------------------------------------
    def selected_id(self) -> int | None:
        return self.query_one("#imports", ImportTable).selected_id

    def selected_view(self) -> ImportView | None:
        return self.query_one("#imports", ImportTable).selected

    def action_next_hung(self) -> None:
        hung = [v for v in self.views if v.is_hung]
        if not hung:
            self.notify("No hung import.")
            return
        current = self.selected_id()
        ids = [v.import_id for v in hung]
        target = ids[(ids.index(current) + 1) % len(ids)] if current in ids else ids[0]
        self.following = None
        self.query_one("#imports", ImportTable).move_cursor([v.import_id for v in self.views].index(target))

    def follow(self, import_id: int) -> None:
        """Keep the cursor on this import (a submit or re-import just made it)."""
        self.following = import_id
        self._dirty = True
        self.app.follow_import(import_id)

    def action_resync(self) -> None:
        if self.app.session is None:
            self.notify("Not connected: press n for Connect.", severity="warning")
            return
        if self.app.session.kind != "reference":  # EthosCE: its importers are read on a timer
            self.notify("This site's importers are read every few seconds; the status line shows the last read.",
                        title="Refresh")
            return
        self.notify("Asking the LMS for its imports...", title="Refresh")
        self._resync()

    @work(exclusive=True, group="monitor-resync", exit_on_error=False)
    async def _resync(self) -> None:
        """`r`: one read of the LMS now, and a word on how it went (it gave none)."""
        import time

        from importconsole.operations.watch import ImportWatcher, LmsUnseen, what_to_do

        watcher = self.watcher
        try:
            if watcher is None or watcher.fatal is not None:  # stopped (a refused token): a fresh one
                probe = ImportWatcher(self.app.lms(), hung_after=self.app.hung_after)
                await probe.poll_once()
                self.app.unseen_changed(None)
                self.app.start_watching()
            else:
                await watcher.poll_once()
                self.app.unseen_changed(None)  # it answered (a watcher that saw no outage says nothing)
        except Exception as error:  # the LMS's sentence; the outage goes on, from its first moment
            self.app.unseen_changed(LmsUnseen(time.time(), str(error), what_to_do(error)))
            self.notify(f"The LMS did not answer: {said(str(error))}", title="Refresh", severity="error")
            return
        active = sum(1 for v in (self.watcher.snapshot() if self.watcher else []) if not v.finished)
        self.notify(f"The LMS answered: {count(active, 'import')} active.", title="Refresh")

    def action_recover(self) -> None:
        from importconsole.tui.screens.recover import RecoverScreen

        if self.app.session is not None and self.app.session.kind == "ethosce":
            self._recover_importer()
            return

        view = self.selected_view()
        if view is None:
            self.notify("No import selected.", severity="warning")
            return
        # The watcher's verdict now, not the last paint's (up to a repaint old).
        watcher = self.watcher
        view = (watcher.views.get(view.import_id) if watcher is not None else None) or view
        if not view.is_hung and not (view.state == ImportState.RUNNING and view.holds_lock):
            self.notify(f"Import {view.import_id} is {view.shown_state}: only a hung import is unlocked.",
                        severity="warning")
            return

        def done(reimport_id: int | None) -> None:
            if reimport_id is not None:
                self.follow(reimport_id)

        self.app.push_screen(RecoverScreen(view), done)
