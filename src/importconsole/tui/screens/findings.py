"""Findings: importfile.validate in a thread worker (with a progress bar), findings grouped by
rule with counts, a severity filter, Enter jumps to the cell in the preview, `x` writes a fixed
copy (never the original) and opens it."""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict
from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import ProgressBar, Static, Tree

from importconsole.importfile.catalogue import RULES
from importconsole.tui.screens.base import ConsoleScreen
from importconsole.tui.text import shown, said

SHOWN_PER_RULE = 200  # a rule firing on 100k rows lists the first ones; the count says how many
FILTERS = {"all": ("error", "warning", "info"), "errors": ("error",), "warnings": ("warning",)}


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
        yield Tree("findings", id="findings-tree")
        yield Static("", id="finding-detail", markup=False)
        yield from self.compose_footer()

    def on_mount(self) -> None:
        tree = self.query_one("#findings-tree", Tree)
        tree.show_root = False
        tree.guide_depth = 2

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        self.sync()

    def course_changed(self) -> None:
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
        not_checked = f" · {len(report.not_checked)} rules not checked (offline)" if report.not_checked else ""
        if report.importer == "course" and not report.course_external_id and self.app.session is not None:
            not_checked += " · no course chosen: o picks one (credit rules need it)"
        self._status(f"{report.rows:,} rows · {summary['errors']} errors · {summary['warnings']} warnings"
                     f"{not_checked} · showing {self.filter} · {verdict}")
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
            count = report.counts[rule_id]
            style = self.app.theme_variables.get(f"finding-{severity}", "")
            label = Text.assemble((f"{severity:<7} ", style), (f"{rule_id} ", "bold"), f"×{count}  ",
                                  (rule.title if rule else "", "dim"))
            node = tree.root.add(label, data=("rule", rule_id), expand=len(order) <= 3)
            items = grouped.get(rule_id, [])
            for finding in items[:SHOWN_PER_RULE]:
                node.add_leaf(_finding_label(finding), data=("finding", finding))
            if count > min(len(items), SHOWN_PER_RULE):
                node.add_leaf(Text(f"... {count - min(len(items), SHOWN_PER_RULE):,} more (the CLI's --json lists all)",
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
        self._fix(path, out, facts, completion_only)

    @work(thread=True, exclusive=True, group="fix")
    def _fix(self, path: Path, out: Path, facts, completion_only: bool) -> None:
        from importconsole.importfile.fixes import write_fixed_file

        try:
            # Sanitize (invisible characters, header spaces) and one credit type per row; dropping
            # credit for completion-only rows changes what is imported, so only on X.
            manifest = write_fixed_file(path, out, sanitize=True, split_credit_types=True,
                                        completion_only=completion_only, rows=None, facts=facts,
                                        importer=self.app.importer, course_external_id=self.app.course_external_id)
        except Exception as error:  # ImportFileError or a refusal (e.g. out exists): the sentence
            self.app.call_from_thread(self._status, said(f"No fixed copy written: {error}"))
            return
        self.app.call_from_thread(self._fixed, out, manifest)

    def _fixed(self, out: Path, manifest) -> None:
        count = manifest.change_count  # the manifest holds only the first changes in memory
        self.notify(f"Fixed copy written: {shown(out.name)} ({count} changes). The original is untouched. "
                    "Opened it in the preview.")
        self.app.open_file(out)


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


def _fixed_name(path: Path) -> Path:
    """card.csv -> card.fixed.csv, card.fixed-2.csv ...: never over an existing file."""
    candidate = path.with_name(f"{path.stem}.fixed{path.suffix or '.csv'}")
    n = 2
    while candidate.exists():
        candidate = path.with_name(f"{path.stem}.fixed-{n}{path.suffix or '.csv'}")
        n += 1
    return candidate
