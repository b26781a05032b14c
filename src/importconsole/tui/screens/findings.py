"""Findings: importfile.validate in a thread worker (with a progress bar), findings grouped by
rule with counts, a severity filter, Enter jumps to the cell in the preview, `x` writes a fixed
copy (never the original) and opens it."""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import ProgressBar, Static, Tree

from importconsole.importfile.catalogue import RULES
from importconsole.lms.models import Importer
from importconsole.tui.screens.base import ConsoleScreen
from importconsole.tui.text import count, shown, said

if TYPE_CHECKING:
    from importconsole.tui.app import FileChoice

SHOWN_PER_RULE = 200  # a rule firing on 100k rows lists the first ones; the count says how many
FILTERS = {"all": ("error", "warning", "info"), "errors": ("error",), "warnings": ("warning",)}


class FindingsTree(Tree):
    """A line too long for the screen ends in "…" instead of being cut at the edge (a course id
    cut there reads as another id); the detail pane below shows the highlighted finding whole."""

    def render_label(self, node, base_style, style) -> Text:
        text = super().render_label(node, base_style, style)
        level, parent = 0, node.parent
        while parent is not None:
            level, parent = level + 1, parent.parent
        room = self.scrollable_content_region.width - max(0, level - 1) * self.guide_depth
        if room > 1 and text.cell_len > room:
            text.truncate(room, overflow="ellipsis")
        return text


class FindingsScreen(ConsoleScreen):
    TITLE_TEXT = "Findings"
    BINDINGS = [
        Binding("enter", "show_cell", "Show in preview", show=False),
        Binding("e", "filter('errors')", "Errors"),
        Binding("w", "filter('warnings')", "Warnings"),
        Binding("a", "filter('all')", "All"),
        # "Fix" is short for the footer at 80 columns; the palette and `?` also show the tooltip.
        Binding("x", "fix", "Fix", tooltip="Fix copy: write a corrected copy and open it (the file itself is not edited)"),
        Binding("X", "fix(True)", "Fix copy, completion-only", show=False),
        Binding("r", "revalidate", "Recheck"),
        Binding("o", "app.pick_course", "Course"),
        Binding("s", "submit", "Submit"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.report = None
        self.filter = "all"
        self._cancel: threading.Event | None = None
        self._validating: Path | None = None

    def compose(self) -> ComposeResult:
        yield from self.compose_title()
        yield Static("", id="findings-status", classes="status-line", markup=False)
        yield ProgressBar(total=100, id="findings-progress", show_eta=False)
        yield FindingsTree("findings", id="findings-tree")
        yield Static("", id="finding-detail", markup=False)
        yield from self.compose_footer()

    def on_mount(self) -> None:
        tree = self.query_one("#findings-tree", Tree)
        tree.show_root = False
        tree.guide_depth = 2
        self.watch(self.app, "choice", self._choice_changed, init=False)

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        self.sync()

    def _choice_changed(self, before: FileChoice, now: FileChoice) -> None:
        # The course picked here (o): checked again at once; elsewhere, on resume (sync).
        if now.course_external_id != before.course_external_id and self.is_active:
            self.action_revalidate()

    def forget(self) -> None:
        self.report = None

    def sync(self) -> None:
        path = self.app.open_path
        if path is None:
            self._status("No file open. Press f for Files.")
            self.query_one("#findings-progress").display = False
            return
        report = self.app.report
        if report is not None and Path(report.path) == path:
            if report is not self.report:
                self.report = report
                self._fill()
            return
        if self._validating != path:
            self.action_revalidate()

    # -- validating --------------------------------------------------------------------------
    def action_revalidate(self) -> None:
        path = self.app.open_path
        if path is None:
            return
        if self._cancel is not None:
            self._cancel.set()
        self._cancel = threading.Event()
        self._validating = path
        self.report = None
        self.query_one("#findings-tree", Tree).clear()
        bar = self.query_one("#findings-progress", ProgressBar)
        bar.display = True
        bar.update(total=100, progress=0)
        where = "with the LMS's facts" if self.app.session else "offline (connect to check courses, users, credit)"
        self._status(f"Validating {shown(path.name)} {where}...")
        facts = None
        if self.app.session is not None:
            from importconsole.lms.port import facts_for

            facts = facts_for(self.app.lms(), asyncio.get_running_loop())  # restws on an EthosCE profile
        self._validate(path, self.app.importer, self.app.course_external_id, facts, self._cancel)

    @work(thread=True, exclusive=True, group="validate")
    def _validate(self, path: Path, importer: str, course: str | None, facts, cancel: threading.Event) -> None:
        from importconsole.importfile.reader import ImportFileError
        from importconsole.importfile.validate import validate

        def progress(done: int, total: int) -> None:
            self.app.call_from_thread(self._progress, path, done, total)

        try:
            report = validate(path, importer=importer, course_external_id=course, facts=facts,
                              progress=progress, cancel=cancel)
        except ImportFileError as error:
            self.app.call_from_thread(self._refused, path, str(error))
            return
        except Exception as error:  # LmsError while asking for facts: a sentence, not a crash
            self.app.call_from_thread(self._refused, path, f"{type(error).__name__}: {error}")
            return
        if not cancel.is_set():
            self.app.call_from_thread(self._validated, path, report)

    def _progress(self, path: Path, done: int, total: int) -> None:
        if path == self._validating:
            self.query_one("#findings-progress", ProgressBar).update(total=max(total, 1), progress=done)

    def _refused(self, path: Path, message: str) -> None:
        if path != self._validating:
            return
        self._validating = None
        self.query_one("#findings-progress").display = False
        self._status(f"{shown(path.name)} cannot be validated")
        self.query_one("#finding-detail", Static).update(shown(message))

    def _validated(self, path: Path, report) -> None:
        if path != self._validating:
            return
        self._validating = None
        self.query_one("#findings-progress").display = False
        if self.app.open_path == path:
            self.app.report = report
        self.report = report
        self._fill()

    # -- showing -----------------------------------------------------------------------------
    def _status(self, text: str) -> None:
        self.query_one("#findings-status", Static).update(text)

    def _fill(self) -> None:
        report = self.report
        tree = self.query_one("#findings-tree", Tree)
        tree.clear()
        summary = report.summary
        verdict = "ready to submit" if report.ok else "fix the errors before submitting (x writes a fixed copy)"
        not_checked = ""
        if report.not_checked:  # never a bare "0 errors" for rules that did not run: say which and why
            why = "offline" if not report.online else "no course chosen: o picks one"
            not_checked = f" · {count(len(report.not_checked), 'rule')} not checked ({why})"
        elif report.importer == Importer.COURSE and not report.course_external_id and self.app.session is not None:
            not_checked = " · no course chosen: o picks one (credit rules need it)"
        self._status(f"{count(report.rows, 'row')} · {count(summary['errors'], 'error')} · "
                     f"{count(summary['warnings'], 'warning')}{not_checked} · showing {self.filter} · {verdict}")
        grouped: dict[str, list] = defaultdict(list)
        for finding in report.findings:
            grouped[finding.rule].append(finding)
        severities = FILTERS[self.filter]
        order = sorted(report.counts, key=lambda r: (_rank(RULES[r].severity if r in RULES else "info"), r))
        for rule_id in order:
            rule = RULES.get(rule_id)
            severity = rule.severity if rule else "info"
            if severity not in severities:
                continue
            times = report.counts[rule_id]
            style = self.app.theme_variables.get(f"finding-{severity}", "")
            label = Text.assemble((f"{severity:<7} ", style), (f"{rule_id} ", "bold"), f"×{times}  ",
                                  (rule.title if rule else "", "dim"))
            node = tree.root.add(label, data=("rule", rule_id), expand=len(order) <= 3)
            items = grouped.get(rule_id, [])
            for finding in items[:SHOWN_PER_RULE]:
                node.add_leaf(_finding_label(finding), data=("finding", finding))
            if times > min(len(items), SHOWN_PER_RULE):
                node.add_leaf(Text(f"... {times - min(len(items), SHOWN_PER_RULE):,} more (the CLI's --json lists all)",
                                   style="dim"), data=("more", rule_id))
        if report.not_checked:
            node = tree.root.add(Text(f"not checked offline ×{len(report.not_checked)}", style="dim"),
                                 data=("not-checked", None))
            for rule_id in report.not_checked:
                node.add_leaf(rule_id, data=("rule", rule_id))
        if not tree.root.children:
            tree.root.add_leaf("No findings: the file is ready to submit." if report.ok else "Nothing to show in this filter.")
        tree.focus()
        tree.move_cursor(tree.root.children[0] if tree.root.children else None)

    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted) -> None:
        detail = self.query_one("#finding-detail", Static)
        data = event.node.data
        if not data:
            detail.update("")
            return
        kind, value = data
        if kind == "finding":
            rule = RULES.get(value.rule)
            text = f"{shown(value.message)}\nFix: {shown(value.fix or (rule.fix if rule else ''))}"
            if value.row is not None:
                text += "\nEnter: show this cell in the preview."
            detail.update(text)
        elif kind == "rule" and value in RULES:
            rule = RULES[value]
            detail.update(f"{rule.explanation}\nFix: {rule.fix}\nFrom the page: {rule.section}")
        else:
            detail.update("")

    def on_tree_node_selected(self, event: Tree.NodeSelected) -> None:
        data = event.node.data
        if data and data[0] == "finding":
            self._show(data[1])

    def action_show_cell(self) -> None:
        node = self.query_one("#findings-tree", Tree).cursor_node
        if node is not None and node.data and node.data[0] == "finding":
            self._show(node.data[1])

    def _show(self, finding) -> None:
        if finding.row is None:
            self.notify(f"{finding.rule} is about the file or its header, not one cell.")
            self.app.show_cell(1, (finding.column_number or 1) - 1)
            return
        self.app.show_cell(finding.row, (finding.column_number or 1) - 1)

    def action_filter(self, which: str) -> None:
        self.filter = which
        if self.report is not None:
            self._fill()

    def action_submit(self) -> None:
        self.app.action_submit()

    # -- fixing ------------------------------------------------------------------------------
    def action_fix(self, completion_only: bool = False) -> None:
        path = self.app.open_path
        if path is None or self.report is None:
            self.notify("Validate a file first.", severity="warning")
            return
        out = _fixed_name(path)
        self._status(f"Writing a fixed copy to {shown(out.name)}...")
        facts = None
        if self.app.session is not None:
            from importconsole.lms.port import facts_for

            facts = facts_for(self.app.lms(), asyncio.get_running_loop())  # restws on an EthosCE profile
        if completion_only and facts is None:
            self.notify("Completion-only rows need the LMS (does the user exist? is credit variable?): connect first.",
                        severity="warning")
            return
        names_course = any(h.strip().lower() == "external_course_id" for h in self.report.header)
        if completion_only and self.app.importer == Importer.COURSE and not self.app.course_external_id and not names_course:
            # What the LMS awards is a fact of the course: without it no row can be weighed.
            self._status("X needs the course this file goes to (what the LMS awards depends on it): o picks it.")
            return
        self._fix(path, out, facts, completion_only)

    @work(thread=True, exclusive=True, group="fix")
    def _fix(self, path: Path, out: Path, facts, completion_only: bool, accepted: list[int] | None = None) -> None:
        import filecmp
        import shutil
        import tempfile

        from importconsole.importfile.fixes import write_fixed_file

        try:
            # Written first in a private folder: a copy that changes nothing is never left beside
            # the file. Sanitize (invisible characters, header spaces) and one credit type per row;
            # dropping credit for completion-only rows changes what is imported, so only on X.
            with tempfile.TemporaryDirectory(prefix="fix-", dir=self.app.state_dir()) as trial:
                manifest = write_fixed_file(path, Path(trial) / out.name, sanitize=True, split_credit_types=True,
                                            completion_only=completion_only, rows=None, facts=facts,
                                            importer=self.app.importer, course_external_id=self.app.course_external_id,
                                            accept_award=set(accepted) if accepted is not None else None)
                if completion_only and accepted is None and manifest.award_differs:
                    # The LMS would record other credit than the file says: the admin decides, row by row.
                    self.app.call_from_thread(self._ask_awards, path, out, facts, manifest.award_differs)
                    return
                same = not manifest.change_count and (not manifest.notes or filecmp.cmp(path, manifest.out, shallow=False))
                if same:
                    self.app.call_from_thread(self._nothing_to_fix, path, manifest, completion_only)
                    return
                if out.exists() or out.with_name(out.name + ".manifest.csv").exists():
                    raise FileExistsError(f"{out.name} appeared meanwhile; press x again")
                shutil.move(manifest.out, out)
                shutil.move(manifest.manifest_path, out.with_name(out.name + ".manifest.csv"))
        except Exception as error:  # ImportFileError or a refusal (e.g. out exists): the sentence
            self.app.call_from_thread(self._status, said(f"No fixed copy written: {error}"))
            return
        self.app.call_from_thread(self._fixed, path, out, manifest)

    def _ask_awards(self, path: Path, out: Path, facts, differs: list) -> None:
        from importconsole.tui.screens.award import AwardChoices

        def chosen(accepted: list[int] | None) -> None:
            if accepted is None:
                self._status("No fixed copy written (Esc).")
                return
            self._fix(path, out, facts, True, accepted)

        self._status(f"{count(len(differs), 'row')} would get other credit than the file says: accept or leave each.")
        self.app.push_screen(AwardChoices(differs), chosen)

    def _left_as_is(self, manifest) -> str:
        total = manifest.left_as_is_count  # every row; the manifest keeps the first ones in memory
        if not total:
            return ""
        shown_rows = [d.row for d in manifest.left_as_is][:20]
        rows = ", ".join(map(str, shown_rows)) + (", ..." if total > len(shown_rows) else "")
        return (f" Not fixed, left as they are: {count(total, 'row')} ({rows}) where the LMS would record other "
                "credit than the file says (the manifest lists them).")

    def _nothing_to_fix(self, path: Path, manifest, completion_only: bool) -> None:
        why = "".join(f" {shown(sentence_of(n))}" for n in manifest.notes)
        what = "invisible characters, header spaces, several credit types in a row"
        if completion_only:
            what += ", credit the LMS awards and reports by itself"
        text = (f"Nothing in {shown(path.name)} that {'X' if completion_only else 'x'} can fix ({what}): "
                f"no copy written.{why}{self._left_as_is(manifest)}")
        self._status(text)
        self.notify(text, severity="warning")

    def _fixed(self, path: Path, out: Path, manifest) -> None:
        notes = "".join(f" {shown(sentence_of(n))}" for n in manifest.notes)
        accepted = [d for d in manifest.award_differs if d.accepted]
        took = (f" Accepted for {count(len(accepted), 'row')}: what the LMS will record instead of what the file says."
                if accepted else "")
        text = (f"Fixed copy written: {shown(out.name)} ({count(manifest.change_count, 'change')}).{notes}{took}"
                f"{self._left_as_is(manifest)} The original is untouched.")
        self.notify(text + " Opened it in the preview.")
        self.app.open_file(out, copy_of=path)  # its findings name the rows left as they are


def _rank(severity: str) -> int:
    return {"error": 0, "warning": 1}.get(severity, 2)


def _finding_label(finding) -> Text:
    where = []
    if finding.row is not None:
        where.append(f"row {finding.row}")
    elif finding.line is not None:
        where.append(f"line {finding.line}")
    if finding.column:
        where.append(shown(finding.column))
    head = ", ".join(where) or "file"
    return Text.assemble((head, "bold"), ": ", shown(finding.message))


def sentence_of(note: str) -> str:
    note = note.strip()
    return (note[:1].upper() + note[1:]).rstrip(".") + "."


def _fixed_name(path: Path) -> Path:
    """card.csv -> card.fixed.csv, card.fixed-2.csv ...: never over an existing file, and a fixed
    copy fixed again is card.fixed-2.csv, never card.fixed.fixed.csv."""
    import re

    stem = re.sub(r"\.fixed(-\d+)?$", "", path.stem)
    suffix = path.suffix or ".csv"
    candidate = path.with_name(f"{stem}.fixed{suffix}")
    n = 2
    while candidate.exists() or candidate.with_name(candidate.name + ".manifest.csv").exists():
        candidate = path.with_name(f"{stem}.fixed-{n}{suffix}")
        n += 1
    return candidate
