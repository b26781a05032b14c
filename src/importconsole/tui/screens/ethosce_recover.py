"""Recover an EthosCE importer (operations.ethosce): the file that was uploaded (the console's own upload,
else the file the importer holds, downloaded from the site; asked only when neither can be had, and the
admin may give another path), the plan (rows stored, the row and character it stopped at, the rows to
re-import), then Enter: compare-and-unlock and re-import exactly the rows not stored. Esc leaves
everything as it is."""

from __future__ import annotations

from collections.abc import Callable

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Input, Label, Static

from importconsole.tui.screens.base import ConsoleModal
from importconsole.tui.text import said, shown


class EthosceRecoverScreen(ConsoleModal[bool]):
    """Dismisses with True once the importer was recovered."""

    BINDINGS = [
        Binding("enter", "confirm", "Plan / Unlock + re-import", priority=True),
        Binding("escape", "cancel", "Cancel"),
        Binding("tab", "give_file", "Another file", priority=True),  # the path field, never the scroll box
    ]

    def __init__(self, importer_id: str, *, hung: bool = False) -> None:
        super().__init__()
        self.importer_id = importer_id
        self.hung = hung  # the monitor's verdict; a locked importer it does not call hung is watched first
        self.plan = None
        self.busy = False
        self.done = False

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog", id="recover-box"):
            yield Label(f"Recover importer {self.importer_id}", classes="dialog-title", markup=False)
            yield Label("The file that was uploaded (Tab to give another):", markup=False)
            yield Input(id="recover-file", compact=True)
            yield Static("", id="recover-plan", markup=False)
            yield Static("", id="recover-steps", markup=False)
            yield Static("Enter: make the plan · Esc: cancel", id="recover-keys", classes="hint", markup=False)

    def on_mount(self) -> None:
        from importconsole.operations.ethosce import last_own_upload, own_file

        client = self.app.lms()
        path = own_file(last_own_upload(self.app.journal(), client.base_url, self.importer_id))
        if path is not None:  # the console uploaded it: no need to ask
            self.query_one("#recover-file", Input).value = str(path)
        self._plan(str(path) if path is not None else None)  # None: the file the importer holds, downloaded

    def action_confirm(self) -> None:
        if self.busy or self.done:
            if self.done:
                self.dismiss(True)
            return
        typed = self.query_one("#recover-file", Input).value.strip()
        if self.plan is None or self.focused is self.query_one("#recover-file", Input) and typed != str(self.plan.file.path):
            if typed:
                self._plan(typed)
            return
        self._recover()

    def action_give_file(self) -> None:
        if not (self.busy or self.done):
            self.query_one("#recover-file", Input).focus()

    def action_cancel(self) -> None:
        self.dismiss(self.done)

    @work(exclusive=True, group="ethosce-recover", exit_on_error=False)
    async def _plan(self, path: str | None) -> None:
        from importconsole.operations.ethosce import plan_importer

        self.busy, self.plan = True, None
        box = self.query_one("#recover-plan", Static)
        box.update("Making the plan: reading the importer and the rows the site stored"
                   + ("..." if path else ", downloading the file the importer holds..."))
        try:
            self.plan = await plan_importer(self.app.lms(), self.importer_id, file=path, journal=self.app.journal())
        except Exception as error:  # RecoveryRefused, CapabilityMissing, LmsError, ImportFileError: a sentence each
            ask = "" if path else "\nType the path of the file that was uploaded, then Enter."
            box.update(said(str(error)) + ask)
            if not path:
                self.query_one("#recover-file", Input).focus()
            return
        finally:
            self.busy = False
        self.query_one("#recover-file", Input).value = str(self.plan.file.path)
        box.update("\n".join(shown(line) for line in self.plan.describe()))
        self.set_focus(None)
        keys = ("Enter: unlock and re-import · Tab: give another file · Esc: cancel" if self.plan.missing
                else "Tab: give another file · Esc: close")
        self.query_one("#recover-keys", Static).update(keys)

    async def _not_hung_yet(self, say: Callable[[str], None]) -> bool:
        """The CLI's rule: only a hung import is unlocked (a slow batch would be cut short); True: refused."""
        from importconsole.operations.ethosce import not_hung_yet

        session = self.app.session
        profile = session.profile_config if session is not None else None
        refused = await not_hung_yet(self.app.lms(), self.plan, hung_after=self.app.hung_after, journal=self.app.journal(),
                                     poll_interval=profile.poll_interval if profile is not None else 2.0, say=say)
        if refused is None:
            return False
        say(refused)
        self.plan = None  # Enter again makes a fresh plan, watched again
        self.query_one("#recover-keys", Static).update("Enter: make a fresh plan · Esc: close")
        return True

    @work(exclusive=True, group="ethosce-recover", exit_on_error=False)
    async def _recover(self) -> None:
        from importconsole.operations.ethosce import recover_importer

        if not self.plan.missing and not self.plan.needs_unlock:
            return
        self.busy = True
        steps = self.query_one("#recover-steps", Static)
        said_so: list[str] = []

        def say(text: str) -> None:
            said_so.append(shown(text))
            steps.update("\n".join(said_so))

        steps.update("Unlocking and re-importing...")
        try:
            if not self.hung and await self._not_hung_yet(say):
                return
            await recover_importer(self.app.lms(), self.plan, journal=self.app.journal(), say=say)
        except Exception as error:  # ImporterMoved, RecoveryRefused, UploadRefused, ImportDied: sentences
            said_so.append(said(str(error)))
            steps.update("\n".join(said_so))
            self.plan = None  # stale now: Enter again would only be refused the same way
            self.query_one("#recover-keys", Static).update("Enter: make a fresh plan · Esc: close")
            return
        finally:
            self.busy = False
        self.done = True
        self.query_one("#recover-keys", Static).update("Done. Enter or Esc: close")
