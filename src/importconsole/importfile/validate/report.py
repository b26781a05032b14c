"""What validation found: `Finding`s (row, line, column, rule, fix), collected into a
`ValidationReport` (capped per rule, every occurrence counted)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypedDict

from .. import safe_text
from ..award import Award
from ..catalogue import ERROR, INFO, RULES, WARNING

MAX_FINDINGS_PER_RULE = 1000  # the summary still counts them all

Columns = Sequence[Sequence[str]]  # a chunk's values, column by column
Where = Callable[[int], tuple[int, int]]  # a record's index in its chunk -> (row, line)


class Summary(TypedDict):
    errors: int
    warnings: int
    info: int
    rows: int
    blank_rows: int
    by_rule: dict[str, int]
    findings_shown: int
    cancelled: bool


@dataclass
class Finding:
    rule: str
    severity: str
    row: int | None  # 1 = first data row; None for the file or the header
    line: int | None
    column: str | None  # the column's header (as written, made visible)
    column_number: int | None  # 1-based
    value: str  # the offending value, made safe to show
    message: str
    fix: str

    def as_dict(self) -> dict[str, str | int | None]:
        return {
            "rule": self.rule, "severity": self.severity, "row": self.row, "line": self.line,
            "column": self.column, "column_number": self.column_number, "value": self.value,
            "message": self.message, "fix": self.fix,
        }


@dataclass
class ValidationReport:
    path: str
    importer: str
    course_external_id: str | None
    encoding: str = ""
    bom: bool = False
    delimiter: str = ","
    line_endings: str = ""
    header: list[str] = field(default_factory=list)
    rows: int = 0
    blank_rows: int = 0
    findings: list[Finding] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)  # by rule id, every occurrence
    not_checked: list[str] = field(default_factory=list)
    not_checked_why: str = ""  # why those rules did not run: offline, or no course named
    awards: Counter[Award] = field(default_factory=Counter)  # importfile.award.Award -> rows (online, course known)
    notes: list[str] = field(default_factory=list)
    cancelled: bool = False
    online: bool = False
    # Line breaks inside quoted values: records on fewer lines than the file has (first such record's line).
    quoted_line_breaks: int = 0
    first_multi_line: int | None = None

    @property
    def summary(self) -> Summary:
        by_severity: Counter[str] = Counter()
        for rule, n in self.counts.items():
            by_severity[RULES[rule].severity] += n
        return {
            "errors": by_severity[ERROR], "warnings": by_severity[WARNING], "info": by_severity[INFO],
            "rows": self.rows, "blank_rows": self.blank_rows, "by_rule": dict(sorted(self.counts.items())),
            "findings_shown": len(self.findings), "cancelled": self.cancelled,
        }

    @property
    def errors(self) -> int:
        return self.summary["errors"]

    @property
    def ok(self) -> bool:
        return self.errors == 0 and not self.cancelled

    def award_lines(self, limit: int = 8) -> list[str]:
        """What the LMS will record for the file's rows, one line per kind of row (most rows first):
        `each of 3 rows: the LMS will record 1.5 ama (imported, reported to nobody)`: per learner's row,
        never a total (a trial read "20 rows: ... 1.5 ama" as 1.5 for the file). Empty offline."""
        from ..wording import plural

        ranked = self.awards.most_common()
        lines = [f"{'each of ' if n > 1 else ''}{plural(n, 'row')}: {award.describe()}" for award, n in ranked[:limit]]
        if len(ranked) > limit:
            rest = sum(n for _, n in ranked[limit:])
            lines.append(f"{plural(rest, 'more row')} of {len(ranked) - limit} other kinds (validate --json lists them)")
        return lines

    def of(self, rule: str) -> list[Finding]:
        return [f for f in self.findings if f.rule == rule]

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.path, "importer": self.importer, "course": self.course_external_id,
            "encoding": self.encoding, "bom": self.bom, "delimiter": self.delimiter,
            "line_endings": self.line_endings, "rows": self.rows, "online": self.online,
            "findings": [f.as_dict() for f in self.findings], "summary": self.summary,
            "not_checked": list(self.not_checked), "not_checked_why": self.not_checked_why,
            "awards": [{"rows": n, "outcome": a.outcome, "sentence": a.describe(),
                        "credits": [{"credit_type": c.credit_type, "amount": str(c.amount), "source": c.source,
                                     "reported_to": list(c.reported_to)} for c in a.credits]}
                       for a, n in self.awards.most_common()],
            "notes": list(self.notes),
        }


class _Collector:
    def __init__(self, report: ValidationReport, header: list[str]):
        self.report = report
        self.header = header

    def add(self, rule: str, *, row: int | None = None, line: int | None = None, column: int | None = None, value: str = "",
            message: str, fix: str | None = None) -> None:
        r = self.report
        r.counts[rule] += 1
        if r.counts[rule] > MAX_FINDINGS_PER_RULE:
            return
        spec = RULES[rule]
        name = safe_text.visible(self.header[column]) if column is not None and column < len(self.header) else None
        r.findings.append(Finding(
            rule, spec.severity, row, line, name, column + 1 if column is not None else None,
            # Messages quote file content: made safe again, whatever a rule forgot.
            safe_text.visible(value[:200]), safe_text.visible(message), safe_text.visible(fix or spec.fix),
        ))
