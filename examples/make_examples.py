"""Writes the example import files of examples/ from the demo dataset (`importconsole sandbox --seed demo`).

    python examples/make_examples.py

Files are raw bytes (LF endings, UTF-8 without BOM unless the example is about bytes); each
`rule-<id>.csv` triggers that DOMAIN.md rule against the demo data. examples/README.md says
which importer and course each one is for.
"""

from __future__ import annotations

from pathlib import Path

from importconsole.sandbox.dataset import demo_dataset, demo_user

HERE = Path(__file__).resolve().parent
COURSE_COLUMNS = ["external_user_id", "first_name", "last_name", "enrollment_start", "complete", "date_completed",
                  "credit_type", "credits", "participant_category"]
GLOBAL_COLUMNS = ["external_user_id", "first_name", "last_name", "external_course_id", "title", "enrollment_start",
                  "complete", "date_completed", "credit_type", "credits"]

# name -> (importer, course or None, description); README.md is written from this too.
EXAMPLES: dict[str, tuple[str, str | None, str]] = {}


def row(n: int | str, columns: list[str], **values) -> dict:
    user = demo_user(n) if isinstance(n, int) else {"external_user_id": n, "first_name": "New", "last_name": "Learner"}
    base = {"external_user_id": user["external_user_id"], "first_name": user["first_name"],
            "last_name": user["last_name"], "enrollment_start": "2026-09-01"}
    return {c: str(values.get(c, base.get(c, ""))) for c in columns}


OUT = HERE


def write(name: str, importer: str, course: str | None, description: str, rows: list[dict],
          columns: list[str], header: list[str] | None = None) -> None:
    EXAMPLES[name] = (importer, course, description)
    lines = [",".join(header or columns)]
    for r in rows:
        lines.append(",".join(_cell(r[c]) for c in columns))
    (OUT / name).write_bytes(("\n".join(lines) + "\n").encode("utf-8"))


def _cell(value: str) -> str:
    if any(ch in value for ch in ',"\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


def free_users(course: str, count: int, start: int = 31) -> list[int]:
    """Demo users with no enrollment in `course` (so every row is a new enrollment)."""
    taken = {e["external_user_id"] for e in demo_dataset()["enrollments"] if e["course_external_id"] == course}
    found = [n for n in range(start, 301) if f"U{n:04d}" not in taken]
    return found[:count]


def main(out: Path = HERE) -> None:
    global OUT
    OUT = out
    c = COURSE_COLUMNS
    done = {"complete": 1, "date_completed": "2026-10-01"}
    write("course-import-clean.csv", "course", "CARD-101",
          "completions without credit: credit is awarded (ama, moc_abim) and queued to PARS",
          [row(n, c, **done) for n in range(11, 16)], c)
    g = GLOBAL_COLUMNS
    write("global-import-clean.csv", "global", None,
          "legacy completions for an existing course whose credit reports nowhere",
          [row(n, g, external_course_id="ETHICS-110", title="Ethics in Practice", complete=1,
               date_completed="2019-05-01", credit_type="cme_other", credits="2.00") for n in range(16, 19)], g)
    write("rule-partial-credit-not-variable.csv", "course", "CARD-101",
          "0.5 ama on a non-variable type: the LMS records the maximum, 1.5",
          [row(19, c, **done, credit_type="ama", credits="0.50")], c)
    write("rule-credits-out-of-range.csv", "course", "PHARM-201",
          "3.0 acpe where the course allows 0.25-2.0",
          [row(20, c, **done, credit_type="acpe", credits="3.00")], c)
    write("rule-course-shell-no-certificate.csv", "global", None,
          "LEGACY-2015 does not exist: the global importer makes a course shell with no certificate",
          [row(21, g, external_course_id="LEGACY-2015", title="Board Review 2015", complete=1,
               date_completed="2015-06-01")], g)
    write("rule-new-user-no-required-objects.csv", "course", "NURS-301",
          "U9001 does not exist and NURS-301 has 0 required objects: when the account appears, the "
          "enrollment completes at once with full credit, although the row says complete=0",
          [row("U9001", c, complete=0)], c)
    write("rule-credit-on-incomplete.csv", "course", "CARD-101",
          "complete=0 with credit: the credit sits on an incomplete enrollment",
          [row(22, c, complete=0, credit_type="ama", credits="1.50")], c)
    write("rule-multiple-credit-types-in-row.csv", "course", "CARD-101",
          "two credit types in one cell: one row per type is needed",
          [row(23, c, **done, credit_type="ama;moc_abim", credits="1.50")], c)
    write("rule-duplicate-credit-row.csv", "course", "CARD-101",
          "the same learner, course and credit type twice: the LMS refuses the second row (cannot update)",
          [row(24, c, **done, credit_type="ama", credits="1.50"), row(24, c, **done, credit_type="ama", credits="1.50")], c)
    write("rule-global-importer-pars.csv", "global", None,
          "ama (reports to PARS) through the global importer: never in the PARS report",
          [row(25, g, external_course_id="LEGACY-2019", title="Board Review 2019 (legacy)", complete=1,
               date_completed="2019-11-01", credit_type="ama", credits="10.00")], g)
    write("rule-special-characters.csv", "course", "CARD-101",
          "a no-break space (U+00A0) after the last name in row 2: it hangs the importer",
          [row(26, c, **done), row(27, c, **done, last_name=demo_user(27)["last_name"] + "\u00a0"), row(28, c, **done)], c)
    write("rule-header-whitespace.csv", "course", "CARD-101",
          "the header 'complete ' has a trailing space: it hangs the importer before row 1",
          [row(29, c, **done)], c, header=[h + " " if h == "complete" else h for h in c])
    write("rule-would-update-existing.csv", "course", "CARD-101",
          "U0001 already completed CARD-101: the LMS refuses the row (cannot update)",
          [row(1, c, **done, credit_type="ama", credits="1.50")], c)
    write("rule-imported-credit-not-reported.csv", "course", "CARD-101",
          "imported ama credit is never queued to PARS; a completion-only row would be",
          [row(30, c, **done, credit_type="ama", credits="1.50")], c)
    [n1, n2] = free_users("CARD-101", 2, start=40)
    write("rule-completion-date-missing.csv", "course", "CARD-101",
          "complete=1 without date_completed: the learner's next login date is used",
          [row(n1, c, complete=1)], c)
    write("rule-participant-category-repeated.csv", "course", "CARD-101",
          "participant_category on two rows of one learner: PARS would count them twice",
          [row(n2, c, complete=0, participant_category="physician"),
           row(n2, c, **done, participant_category="physician")], c)
    hang_users = free_users("CARD-101", 20, start=60)
    rows = []
    for i, n in enumerate(hang_users, start=1):
        r = row(n, c, **done)
        if i == 7:
            r["last_name"] = r["last_name"] + "\u200b"  # zero-width space, invisible in Excel
        rows.append(r)
    write("hangs-the-importer.csv", "course", "CARD-101",
          "20 completions; row 7's last name ends in a zero-width space (U+200B): the import stops after row 6, "
          "stays running and keeps the course importer locked until Unlock", rows, c)
    _write_readme()


def _write_readme() -> None:
    lines = [
        "# Example import files",
        "",
        "For the demo LMS (`make sandbox`, or `importconsole sandbox --seed demo`). Generated by",
        "`python examples/make_examples.py`; raw bytes (`.gitattributes` marks them `-text`).",
        "`rule-<id>.csv` triggers the DOMAIN.md rule `<id>` against the demo data.",
        "",
        "| file | importer | course | what happens |",
        "|---|---|---|---|",
    ]
    for name, (importer, course, description) in EXAMPLES.items():
        lines.append(f"| `{name}` | {importer} | {course or '(per row)'} | {description} |")
    (OUT / "README.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
