"""The console: one Textual app, one mode per area (files, preview, findings, monitor, credit
fixes, journal, connect). Screens only show and ask; the work is done by the core."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual import work
from textual.app import App
from textual.binding import Binding
from textual.reactive import var
from textual.signal import Signal

from importconsole import crash
from importconsole.tui.commands import ConsoleCommands
from importconsole.tui.session import LmsSession
from importconsole.tui.themes import DEFAULT_THEME, STATE_VARIABLE_DEFAULTS, ThemeProblem, load_themes, user_theme_dir

if TYPE_CHECKING:
    from importconsole.operations.watch import ImportWatcher, LmsUnseen

DEFAULT_HUNG_AFTER = 60.0
RECENT_IMPORTS = 20


@dataclass(frozen=True)
class FileChoice:
    """The importer and course chosen for one file: they belong to it, never to the next file
    (an ETHICS file's confirmation once said "course CARD-101", picked for another file)."""

    importer: str = "course"
    course_external_id: str | None = None


class ImportConsoleApp(App[int]):
    # What every screen shows the same way. Screens watch these (`self.watch(self.app, "hung_ids", ...)`
    # in their on_mount); Textual calls each watcher on a change, on every mode's screens and dialogs.
    session: var[LmsSession | None] = var(None, always_update=True)  # a reconnect with equal fields is news too
    hung_ids: var[frozenset[int]] = var(frozenset())  # imports the watcher calls hung now: every title line says so
    # operations.watch.LmsUnseen while the LMS does not answer: every title line says so, and the monitor never
    # shows "0 hung" for an LMS it cannot see (issue 10, section 2). Each report repaints, as the old calls did.
    lms_unseen: var[LmsUnseen | None] = var(None, always_update=True)
    choice: var[FileChoice] = var(FileChoice())  # the importer and course chosen for the open file

    CSS_PATH = Path(__file__).with_name("app.tcss")  # absolute: subclasses live elsewhere
    TITLE = "importconsole"
    # Toasts are short and never the only place something is said (house rule): the title line
    # carries hung imports, Files the demo's welcome, Connect the startup problem.
    NOTIFICATION_TIMEOUT = 4
    COMMANDS = App.COMMANDS | {ConsoleCommands}
    # The navigation keys and q are in the footer's own line (widgets.navigation.NavigationBar),
    # so Textual's Footer line keeps each screen's keys and `?`; both fit 80 columns.
    BINDINGS = [
        Binding("f", "show('files')", "Files", show=False),
        Binding("p", "show('preview')", "Preview", show=False),
        Binding("v", "show('findings')", "Findings", show=False),
        Binding("m", "show('monitor')", "Monitor", show=False),
        Binding("c", "show('credit')", "Credit fixes", show=False),
        Binding("j", "show('journal')", "Journal", show=False),
        Binding("n", "show('connect')", "Connect", show=False),
        Binding("question_mark", "help", "Help"),
        Binding("ctrl+p", "command_palette", "Commands", show=False),
        Binding("q", "quit", "Quit", show=False),
    ]
    MODES = {
        "files": lambda: _screen("files", "FilesScreen"),
        "preview": lambda: _screen("preview", "PreviewScreen"),
        "findings": lambda: _screen("findings", "FindingsScreen"),
        "monitor": lambda: _screen("monitor", "MonitorScreen"),
        "credit": lambda: _screen("credit", "CreditFixScreen"),
        "journal": lambda: _screen("journal", "JournalScreen"),
        "connect": lambda: _screen("connect", "ConnectScreen"),
    }
    def __init__(
        self,
        *,
        session: LmsSession | None = None,
        workdir: Path | None = None,
        open_path: Path | None = None,
        theme_name: str | None = None,
        theme_dirs: list[Path] | None = None,
        config_path: Path | None = None,
        start_mode: str | None = None,
        live: bool = True,
        startup_problem: str | None = None,
        hung_after: float | None = None,
        welcome: str | Callable[[ImportConsoleApp], str] | None = None,
        state_folder: Path | None = None,
    ) -> None:
        super().__init__()
        self._choices: dict[str, FileChoice] = {}  # resolved path -> what was chosen for that file
        self._hung_toast_until = 0.0  # while the "Import hung" toast is up (time.monotonic())
        # Where recent files, the theme and credit-fix folders go: the admin's state dir, or the
        # demo's own temporary folder (a demo never writes into the admin's real state).
        self.state_folder = state_folder
        self.session = session
        if session is not None:
            crash.register_secret(session.token)
        self.workdir = (workdir or Path.cwd()).resolve()
        self.open_path = open_path
        self.config_path = config_path
        # Tests and snapshots turn live refresh off to get a frame that does not change.
        self.live = live
        self._start_mode = start_mode
        self.startup_problem = startup_problem
        self.welcome = welcome
        self.report = None  # the ValidationReport of open_path, once validated
        self._lms = None
        self.watcher: ImportWatcher | None = None  # from the start while connected
        self.watch_generation = 0  # bumped on every change the watcher reports
        self._to_follow: set[int] = set()
        self._announced_hung: set[int] = set()
        # Every change of one import's view (the recover plan follows its import through it).
        self.import_changed_signal: Signal = Signal(self, "import-changed")
        self._failing_since: float | None = None  # the first failure of this outage, seen by the console
        # Seconds without progress before an import is called hung: given, else the profile's.
        self.hung_after = hung_after or (session.hung_after if session else None) or DEFAULT_HUNG_AFTER
        self.jump_to: tuple[int, int | None] | None = None  # a cell the findings asked the preview to show
        themes, problems = load_themes(*(theme_dirs if theme_dirs is not None else [user_theme_dir()]))
        self.theme_problems: list[ThemeProblem] = problems
        for theme in themes:
            self.register_theme(theme)
        from importconsole.tui.recent import saved_theme

        self._remember_theme = theme_dirs is None  # tests and snapshots leave the admin's state alone
        wanted = theme_name or (saved_theme(self.state_file) if self._remember_theme else None) or DEFAULT_THEME
        if wanted not in self.available_themes:
            self.theme_problems.append(ThemeProblem(Path(wanted), "no theme of that name; using the default"))
            wanted = DEFAULT_THEME
        self.theme = wanted

    # -- theme variables -------------------------------------------------------------------
    def get_theme_variable_defaults(self) -> dict[str, str]:
        return dict(STATE_VARIABLE_DEFAULTS)

    # -- lifecycle ---------------------------------------------------------------------------
    def on_mount(self) -> None:
        if self._remember_theme:
            from importconsole.tui.recent import remember_theme

            self.theme_changed_signal.subscribe(self, lambda theme: remember_theme(theme.name, self.state_file))
        for problem in self.theme_problems:
            self.notify(str(problem), title="Theme not loaded", severity="warning", timeout=8)
        if self.startup_problem:
            self.notify(self.startup_problem, title="Not connected", severity="warning")
        mode = self._start_mode
        if mode is None:
            if self.open_path is not None:
                mode = "preview"
            elif self.session is None:
                mode = "connect"
            else:
                mode = "files"
        self.switch_mode(mode)
        self.start_watching()

    def action_show(self, mode: str) -> None:
        import time

        if mode == "monitor" and time.monotonic() < self._hung_toast_until:
            self.clear_notifications()  # the monitor's detail pane says it, under where the toast sat
        if self.current_mode != mode:
            self.switch_mode(mode)

    def action_help(self) -> None:
        from importconsole.tui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))

    def action_help_quit(self) -> None:
        # Textual's own says "Press [b]ctrl+q[/b]": its markup shows raw here (toasts are text).
        keys = [self.get_key_display(a.binding) for a in self.active_bindings.values()
                if a.binding.action in ("quit", "app.quit")]
        how = " or ".join(sorted(dict.fromkeys(keys), key=len)) or "q"  # q first: the footer's
        self.notify(f"Ctrl+C does not quit here: press {how} to quit. Imports already sent go on on the LMS.",
                    title="Do you want to quit?")

    def notify(self, message: str, *, markup: bool = False, **kwargs) -> None:
        # Toasts quote file names and cells: `[/b]` in one is text, never markup (it crashed);
        # screens' self.notify passes markup=True, so it is not asked.
        super().notify(message, markup=False, **kwargs)

    def clear_notifications(self) -> None:
        self._hung_toast_until = 0.0
        super().clear_notifications()

    def push_screen(self, screen, *args, **kwargs):
        from textual.screen import ModalScreen

        if isinstance(screen, ModalScreen):
            self.clear_notifications()  # a dialog is read in full: no toast over it
        return super().push_screen(screen, *args, **kwargs)

    # -- what screens ask of the app -------------------------------------------------------
    # Screens keep no file state of their own: on resume they show what the app holds.
    @property
    def state_file(self) -> Path | None:
        """The state file (recent files, theme); None: the admin's own (config.state_path())."""
        return self.state_folder / "state.toml" if self.state_folder is not None else None

    @staticmethod
    def _file_key(path: Path | None) -> str:
        return str(Path(path).resolve()) if path is not None else ""

    def _watch_choice(self, choice: FileChoice) -> None:
        self._choices[self._file_key(self.open_path)] = choice  # it stays with this file

    @property
    def importer(self) -> str:
        """The importer chosen for the open file (course-level unless changed for it)."""
        return self.choice.importer

    @importer.setter
    def importer(self, value: str) -> None:
        self.choice = replace(self.choice, importer=value)

    @property
    def course_external_id(self) -> str | None:
        """The course chosen for the open file; another file starts with none."""
        return self.choice.course_external_id

    @course_external_id.setter
    def course_external_id(self, value: str | None) -> None:
        self.choice = replace(self.choice, course_external_id=value)

    def open_file(self, path: Path, *, copy_of: Path | None = None) -> None:
        """Open an import file in the preview; the findings of the previous file are forgotten.
        `copy_of`: the file this one is a fixed copy of; it keeps that file's importer and course."""
        from importconsole.tui.recent import remember

        if copy_of is not None:
            self._choices[self._file_key(path)] = self._choices.get(self._file_key(copy_of), FileChoice())
        self.open_path = Path(path)
        self.report = None
        self.choice = self._choices.get(self._file_key(self.open_path), FileChoice())
        remember(self.open_path, self.state_file)
        self._to_preview()

    def show_cell(self, row: int, column: int | None) -> None:
        self.jump_to = (row, column)
        self._to_preview()

    def _to_preview(self) -> None:
        """The preview shows the open file (and the cell asked for): now if it is in front, else on
        resume (its on_screen_resume syncs)."""
        from importconsole.tui.screens.preview import PreviewScreen

        if self.current_mode != "preview":
            self.switch_mode("preview")
        elif isinstance(self.screen, PreviewScreen):
            self.screen.sync()

    def action_pick_course(self) -> None:
        """Choose the course (validation and submit use it); the findings are checked again."""
        from importconsole.tui.screens.course import CoursePicker

        if self.session is None:
            self.notify("Connect to an LMS first (n: Connect): the courses come from it.", severity="warning")
            return

        def picked(course: str | None) -> None:
            if course is None or course == self.course_external_id:
                return
            self.report = None  # the screen in front checks the file again (it watches `choice`)
            self.choice = replace(self.choice, importer="course", course_external_id=course)

        self.push_screen(CoursePicker(self.course_external_id), picked)

    def action_submit(self) -> None:
        from importconsole.tui.screens.submit import SubmitScreen

        if self.open_path is None:
            self.notify("Open a file first (f: Files).", severity="warning")
        elif self.session is None:
            self.notify("Connect to an LMS first (n: Connect).", severity="warning")
        else:
            self.push_screen(SubmitScreen(self.open_path), self._submitted)

    def _submitted(self, import_id: int | None) -> None:
        if import_id is None:
            return
        from importconsole.tui.screens.monitor import MonitorScreen

        self.switch_mode("monitor")
        monitor = self.screen
        if isinstance(monitor, MonitorScreen):
            monitor.follow(import_id)

    def set_session(self, session: LmsSession) -> None:
        if self._lms is not None:
            self.run_worker(self._lms.aclose(), exit_on_error=False)
            self._lms = None
        self._announced_hung.clear()
        # A new session (a new token): a new story. Set without telling the screens: the session below does.
        self.set_reactive(ImportConsoleApp.hung_ids, frozenset())
        self.set_reactive(ImportConsoleApp.lms_unseen, None)
        self._failing_since = None
        crash.register_secret(session.token)
        if session.hung_after:
            self.hung_after = session.hung_after
        self.session = session  # every screen that watches it: title lines; credit fixes look again
        self.start_watching()

    def state_dir(self):
        """Where the console keeps its private files (plans, remainders, credit fixes): 0700."""
        import os

        from importconsole.crash import crash_dir
        from importconsole.private_files import private_folder

        folder = self.state_folder if self.state_folder is not None else crash_dir().parent
        try:
            private_folder(folder)
        except OSError:
            return None
        return folder if os.access(folder, os.W_OK) else None

    # -- watching every import (dolphie's shape: one worker feeds, screens paint) -----------
    def start_watching(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()
            self.watcher = None
        if self.session is not None and self.live:
            self._watch()

    @work(exclusive=True, group="watch", exit_on_error=False)
    async def _watch(self) -> None:
        from importconsole.operations.hung import diagnose_import
        from importconsole.operations.watch import ImportWatcher

        from importconsole.lms.port import capabilities_of

        client = self.lms()
        if not capabilities_of(client).import_ids:
            return  # imports without ids (EthosCE): the monitor follows each importer itself
        watcher = ImportWatcher(client, hung_after=self.hung_after, poll_interval=1.0,
                                diagnose=lambda item: diagnose_import(client, item.id, journal=self.journal()))
        self.watcher = watcher
        watcher.on_change(self._watch_changed)
        try:
            await self.seed_watcher(watcher, client)
        except Exception:  # the watcher tries again at once; it says "not seen" (since this moment)
            import time

            self._failing_since = self._failing_since or time.time()
        self._to_follow.clear()
        await watcher.run()

    async def seed_watcher(self, watcher, client) -> None:
        """The first sync: the latest imports, finished ones included (the admin sees what just
        happened), aged by the server's clock (`server_time`), and the locks, so an import hung
        before the console opened is hung on the first paint, not after the watcher's resync."""
        page = await client.list_imports(limit=RECENT_IMPORTS)
        for item in page.items:
            watcher.apply_import(item, server_time=page.server_time)
        for lock in await client.locks():
            watcher.apply_lock(lock)
        for import_id in list(self._to_follow):
            await watcher.follow(import_id)

    def _watch_changed(self, update) -> None:
        self.watch_generation += 1
        if update.kind == "lms":
            self.unseen_changed(update.unseen)
            return
        view = update.view
        if view is None:
            return
        self.import_changed_signal.publish(view)
        # One verdict everywhere: the title line, the monitor (under a dialog too) and the plan watch it.
        if view.is_hung:
            self.hung_ids = self.hung_ids | {view.import_id}
        else:
            self.hung_ids = self.hung_ids - {view.import_id}
        if view.is_hung and view.diagnosis is not None and view.import_id not in self._announced_hung:
            self._announced_hung.add(view.import_id)
            from textual.screen import ModalScreen

            # The monitor's detail pane says it already, and a dialog is never covered.
            if self.current_mode == "monitor" or isinstance(self.screen, ModalScreen):
                return
            import time

            from importconsole.tui.text import shown

            self.notify(f"Import {view.import_id} is hung at row {view.hung.stopped_at_row}: "
                        f"{shown(view.diagnosis.summary())}. Monitor (m), then u.",
                        title="Import hung", severity="error", timeout=6)
            self._hung_toast_until = time.monotonic() + 6

    def unseen_changed(self, unseen) -> None:
        """The LMS stopped answering (an LmsUnseen) or answers again (None). One outage keeps its
        first moment, however often the watcher is restarted or `r` asks again."""
        import dataclasses

        if unseen is not None:
            seen = self.watcher.last_seen if self.watcher else None  # a failure before the LMS's last answer is over
            first = [t for t in (self._failing_since, self.lms_unseen.since if self.lms_unseen else None)
                     if t and (seen is None or t >= seen)]
            if first and min(first) < unseen.since:
                unseen = dataclasses.replace(unseen, since=min(first))
        else:
            self._failing_since = None
        self.lms_unseen = unseen  # every title line, the monitor and the recover plan say it at once

    def follow_import(self, import_id: int) -> None:
        """Make sure the watcher knows this import even if it finished before it was seen."""
        if self.watcher is None:
            self._to_follow.add(import_id)
        else:
            self.run_worker(self.watcher.follow(import_id), exit_on_error=False)

    def lms(self):
        """The one LmsClient of this run (HTTP only ever from async workers on the app's loop)."""
        if self.session is None:
            raise RuntimeError("not connected")
        if self._lms is None:
            self._lms = self.session.client()
        return self._lms

    def journal(self):
        from importconsole.journal import Journal

        if self.session is None or self.session.journal_path is None:
            return None
        return Journal(self.session.journal_path)

    async def on_unmount(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()
        if self._lms is not None:
            await self._lms.aclose()

    # -- crashes: one sentence, a 0600 report without locals (the token could be one) -------
    def _handle_exception(self, error: Exception) -> None:
        self._return_code = 1
        if self._exception is None:  # run_test re-raises it for pytest
            self._exception = error
            self._exception_event.set()
        path = crash.write_crash_report(error)
        where = f" Details for the developers: {path}" if path else ""
        self.panic(Text(crash.redact(
            f"importconsole hit an unexpected problem ({type(error).__name__}: {error}). "
            f"Nothing more was sent to the LMS.{where}"
        )))


def _screen(module: str, name: str):
    """Screens are imported when first shown: the first frame comes sooner."""
    import importlib

    return getattr(importlib.import_module(f"importconsole.tui.screens.{module}"), name)()
