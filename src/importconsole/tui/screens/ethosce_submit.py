"""The submit screen's EthosCE path (Drupal 7 + Feeds): the same keys as on the console's own API, the
work done by operations.ethosce.submit_to_importer (the CLI's one copy), with a progress bar in rows.

Feeds moves a batch only while the session that started it drives it: this screen drives it in a worker
to the end. Esc mid-batch asks once; a second Esc (or quitting) stops driving it, and the screen (or the
terminal, after a quit) says the importer is stuck mid-import and how to go on; the journal keeps the batch."""

from __future__ import annotations

import asyncio

from textual.widgets import ProgressBar, Static

from importconsole.tui.text import said, shown

ON_THE_MONITOR = "Here: Esc, then m (Monitor); u there recovers it (unlock, then exactly the rows not stored)."


class EthosceSubmit:
    """Mixed into SubmitScreen: used when the session is an EthosCE profile."""

    _stop_asked = False
    _interrupted: str | None = None

    @property
    def ethosce(self) -> bool:
        session = self.app.session
        return session is not None and session.kind == "ethosce"

    def ethosce_confirmation(self, plan) -> tuple[list[str], str]:
        """The confirmation: the site, the importer and the file, with rows."""
        client = self.app.lms()
        importer_id = client.importer_id(plan.importer)
        rows = f"{plan.row_count:,} rows" if plan.row_count is not None else "rows: unknown"
        lines = [f"File: {shown(plan.path.name)} ({rows})",
                 f"Site: {shown(client.base_url)}",
                 f"Importer: {shown(importer_id)} (each row names its course)"]
        # Two warnings fit an 80x24 terminal with the keys; the Findings screen (v) lists them all.
        lines += [f"! {shown(w)}" for w in plan.warnings[:2]]
        if len(plan.warnings) > 2:
            lines.append(f"... and {len(plan.warnings) - 2} more warnings (v: Findings lists them)")
        return lines, f"Enter: import {rows} with {shown(importer_id)}  ·  Esc: cancel"

    async def send_to_importer(self) -> None:
        """Upload through the import form and drive the batch to its end (operations.ethosce)."""
        from importconsole.journal import Journal
        from importconsole.lms.ethosce.errors import ImportDied, UploadRefused
        from importconsole.operations.ethosce import BatchInterrupted, submit_to_importer

        bar, keys = self.query_one("#submit-progress", ProgressBar), self.query_one("#submit-keys", Static)
        backend, journal, plan = self.app.lms(), self.app.journal() or Journal(), self.plan
        bar.update(total=max(plan.row_count or 1, 1), progress=0)
        bar.display = True

        def progress(rows: int, total: int) -> None:  # rows of the file, not Feeds' byte percentage
            bar.update(total=max(total, 1), progress=rows)
            if not self._stop_asked:
                keys.update(f"Importing: {rows:,} of {total:,} rows  ·  Esc: stop")

        try:
            importer_id = backend.importer_id(plan.importer)
            keys.update(f"Uploading {plan.path.name} to {importer_id}...")
            outcome = await submit_to_importer(backend, plan, importer_id, journal=journal, progress=progress)
        except UploadRefused as error:  # locked: the sentence names the lock; nothing was imported
            return self._ethosce_ended(f"{said(str(error))}\n{ON_THE_MONITOR}", problem=True)
        except ImportDied as error:  # a batch step answered 500: said at once, with the lock and the rows stored
            after = ON_THE_MONITOR if error.outcome is not None and error.outcome.locked_after else ""
            rows = await self._rows_stored(backend, journal, importer_id, plan.row_count)
            return self._ethosce_ended("\n".join(filter(None, [said(str(error)), rows, after])), problem=True)
        except BatchInterrupted as error:  # Esc twice, quitting, or a lost connection
            self._interrupted = said(str(error))
            return self._ethosce_ended(f"{self._interrupted}\n{ON_THE_MONITOR}", problem=True)
        except Exception as error:  # SubmitRefused (the file changed), LmsError: sentences
            return self._ethosce_ended(said(str(error)), problem=True)
        text = said(outcome.sentence)
        if not outcome.scheduled:
            bar.update(total=max(outcome.file.count, 1), progress=outcome.file.count)
            text += "\n" + await self._rows_stored(backend, journal, importer_id, outcome.file.count)
        self._ethosce_ended(text, problem=False)

    async def _rows_stored(self, backend, journal, importer_id: str, sent: int | None) -> str:
        """What the LMS holds: the rows stored since the upload, read from restws."""
        from importconsole.operations.ethosce import last_own_upload

        own = last_own_upload(journal, backend.base_url, importer_id)
        if own is None or own.first_stored_id is None or sent is None:
            return ""
        try:
            stored = len(await backend.restws.transcript_rows(after_id=own.first_stored_id))
        except Exception as error:
            return f"The rows stored could not be read from restws: {error}"
        return f"The site stored {stored:,} rows since the upload (the file has {sent:,}), read from restws."

    def _ethosce_ended(self, text: str, *, problem: bool) -> None:
        self.stage = "done"
        if problem:
            self.query_one("#submit-progress", ProgressBar).display = False  # a bar over a refusal reads as "sent"
        summary = self.query_one("#submit-summary", Static)
        summary.update(text)
        summary.set_class(problem, "problem")
        keys = self.query_one("#submit-keys", Static)
        keys.update("Enter or Esc: close  ·  then m: Monitor shows the importer")

    def ethosce_cancel(self) -> bool:
        """Esc mid-batch: the first asks, the second stops driving it. True when the screen stays."""
        if self.stage != "sending":
            return False
        if not self._stop_asked:
            self._stop_asked = True
            self.query_one("#submit-keys", Static).update(
                "Esc again stops driving the batch: the importer stays stuck mid-import (locked) until recovered")
            return True
        self.workers.cancel_group(self, "submit")  # the operation journals it and says where it stopped
        return True

    async def ethosce_unmount(self) -> None:
        """Quitting mid-batch: stop driving it, and say on the terminal where the importer is left."""
        sending = self.stage == "sending"  # Textual may have cancelled the worker already (then it said it)
        if sending:
            workers = self.workers.cancel_group(self, "submit")
            try:
                await asyncio.wait_for(asyncio.gather(*(w.wait() for w in workers), return_exceptions=True), 5)
            except TimeoutError:
                pass
        text = self._interrupted or ("The console quit while uploading to the EthosCE site: look at the importer "
                                     "(`importconsole imports`), then `importconsole recover` if it is locked."
                                     if sending else None)
        if text is None:
            return
        if not self.app.is_running:  # printed on the terminal once the console has closed
            self.app.exit(return_code=self.app.return_code or 0, message=text)
        elif sending:
            self.app.notify(text, title="Submit stopped", severity="warning", timeout=30)
