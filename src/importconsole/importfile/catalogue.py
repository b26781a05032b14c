"""Every check the console makes on an import file, as data: the CLI, the TUI and docs/rules.md
all read `RULES`. Rule ids are stable (JSON output, tests, docs use them).

`needs_lms` rules are checked only with LMS facts; offline they are listed as "not checked".
`section` names the section of the knowledge-base page ("Course Record Imports - Warnings and
Precautions") the rule comes from, or "file format" for the structural checks.
"""

from __future__ import annotations

from dataclasses import dataclass

ERROR, WARNING, INFO = "error", "warning", "info"


@dataclass(frozen=True)
class Rule:
    id: str
    severity: str
    title: str
    section: str
    explanation: str
    fix: str
    needs_lms: bool = False
    domain: bool = False  # one of DOMAIN.md's rules (the page's warnings), not a structural check


_FORMAT = "file format"

_RULES = [
    # --- The page's warnings (DOMAIN.md) ---
    Rule(
        "partial-credit-not-variable", ERROR, "Partial credit on a non-variable credit type",
        "Awarding partial or variable credit",
        "The row awards less than the course's maximum for this credit type, but Variable is not "
        "enabled on it: the LMS accepts the row and records the MAXIMUM instead.",
        "Enable Variable on the course's credit type before importing, or import the maximum.",
        needs_lms=True, domain=True,
    ),
    Rule(
        "credits-out-of-range", ERROR, "Credits outside the course's range",
        "Awarding partial or variable credit",
        "The amount is above the course's maximum, below its minimum, or not a multiple of its "
        "increments for this credit type.",
        "Use an amount between the course's min and max, in steps of its increments.",
        needs_lms=True, domain=True,
    ),
    Rule(
        "course-shell-no-certificate", WARNING, "Unknown course: a shell without certificate is made",
        "Certificates",
        "The global importer creates a course shell for an unknown external_course_id; imported "
        "course shells have no certificate and no required objects.",
        "Create the course first (with its certificate) and import the enrollments into it, or "
        "correct external_course_id.",
        needs_lms=True, domain=True,
    ),
    Rule(
        "new-user-no-required-objects", WARNING, "New learner in a course with no required objects",
        "Importing enrollments",
        "The learner does not exist yet and the course has no required course object: when the "
        "account appears the learner completes at once and receives every credit available, "
        "whatever the row says.",
        "Add at least one required course object to the course before importing, or create the "
        "user first.",
        needs_lms=True, domain=True,
    ),
    Rule(
        "credit-on-incomplete", ERROR, "Credit on an incomplete record",
        "Importing enrollments",
        "complete=0 with credits or credit_type: the imported credit record is the one that "
        "remains, whatever the learner claims later.",
        "Leave credits and credit_type empty on complete=0 rows; import the credit with the "
        "completion.",
        domain=True,
    ),
    Rule(
        "multiple-credit-types-in-row", ERROR, "Several credit types in one row",
        "Multiple credit types",
        "credit_type holds more than one type (a;b, a,b, a|b, a/b); the importer takes one "
        "credit type per row.",
        "Write one row per credit type (`importconsole fix --split-credit-types`).",
        domain=True,
    ),
    Rule(
        "duplicate-credit-row", ERROR, "Same learner, course and credit type on several rows",
        "Multiple credit types",
        "Only one row per credit type awarded: a second row for the same learner, course and "
        "credit type is a double award or is refused. Rows are compared as the LMS matches them: "
        "the learner is the external_user_id, or without one the email ignoring case; ids and "
        "emails without surrounding spaces and in one Unicode form (NFC).",
        "Keep one row per learner, course and credit type.",
        domain=True,
    ),
    Rule(
        "global-importer-pars", WARNING, "Global importer with PARS credit",
        "PARS",
        "The global course report importer is for legacy data: its records are not included in "
        "PARS reports.",
        "Use the course-level importer for credit that must reach PARS.",
        needs_lms=True, domain=True,
    ),
    Rule(
        "special-characters", ERROR, "Special characters in the data",
        "Unlocking imports",
        "Control, zero-width, bidi, non-breaking or other unusual space characters, U+FFFD, "
        "private-use characters or bytes invalid in the encoding: an import hangs on them and "
        "locks the importer.",
        "Remove or replace the character (`importconsole fix --sanitize`).",
        domain=True,
    ),
    Rule(
        "header-whitespace", ERROR, "Extra spaces in the headers",
        "Unlocking imports",
        "A header with leading, trailing, doubled or non-breaking spaces (or invisible "
        "characters): the import hangs and locks the importer.",
        "Trim the header (`importconsole fix --sanitize`).",
        domain=True,
    ),
    Rule(
        "would-update-existing", ERROR, "The learner already completed this course",
        "Updating enrollments",
        "The course record importer cannot update an enrollment or credit record assigned to a "
        "user: the LMS refuses the row.",
        "Remove the row, or edit the existing record in the LMS.",
        needs_lms=True, domain=True,
    ),
    Rule(
        "imported-credit-not-reported", WARNING, "Imported credit is never reported",
        "Reporting credit to external entities such as boards",
        "Imported credit records do not trigger reporting to PARS, CPE Monitor or an AMS.",
        "Import the completion without credit where the user exists and the credit is "
        "non-variable: the LMS then awards and reports it (`importconsole fix --completion-only`).",
        needs_lms=True, domain=True,
    ),
    Rule(
        "completion-date-missing", WARNING, "Completion without a date",
        "data dictionary",
        "complete=1 with no date_completed: the learner's next login date is used.",
        "Fill in date_completed (ISO 8601, e.g. 2026-03-04).",
        domain=True,
    ),
    Rule(
        "participant-category-repeated", WARNING, "participant_category on several rows",
        "PARS",
        "participant_category on more than one row of one participant and course: PARS counts "
        "the participant twice. The participant is matched as in duplicate-credit-row (email "
        "case and surrounding spaces ignored).",
        "Keep participant_category on one row per participant and course.",
        domain=True,
    ),
    # --- Structural checks ---
    Rule(
        "file-unreadable", ERROR, "Not an import file",
        _FORMAT,
        "The file cannot be read as a CSV import file (empty, binary, a workbook, UTF-16 without "
        "BOM, a field over the size cap...).",
        "Export the data as CSV UTF-8 and validate again.",
    ),
    Rule(
        "no-records", ERROR, "No records",
        _FORMAT, "The file has a header but no record.", "Add the records below the header.",
    ),
    Rule(
        "encoding-bom", INFO, "Byte order mark stripped",
        _FORMAT, "The file starts with a byte order mark (Excel's UTF-8 or Unicode text); it "
        "was removed before reading the header.", "Nothing to do.",
    ),
    Rule(
        "encoding-fallback", WARNING, "Not UTF-8: read as Windows-1252",
        _FORMAT, "The file is not valid UTF-8; it was read as Windows-1252 (cp1252). Letters "
        "may be wrong if it was another encoding. The LMS reads UTF-8: each value with a letter "
        "beyond ASCII is also reported as special-characters (the import hangs there).",
        "Save the file as CSV UTF-8 in Excel (File > Save As > CSV UTF-8).",
    ),
    Rule(
        "encoding-not-utf8", ERROR, "UTF-16: the LMS reads UTF-8 only",
        _FORMAT, "The file is UTF-16 (Excel's \"Unicode Text\"). The console reads it, but the LMS's "
        "importer reads UTF-8 and refuses the file. (A Windows-1252 file is reported value by value "
        "as special-characters: the import hangs on its letters beyond ASCII.)",
        "Write a UTF-8 copy: `importconsole fix FILE --out NEW.csv --sanitize`, or save as CSV UTF-8 in Excel.",
    ),
    Rule(
        "mojibake", WARNING, "Garbled letters (mojibake)",
        _FORMAT, "Text such as `NumÃ©ro`: UTF-8 that was once read as Windows-1252 and saved "
        "again.", "Correct the text (NumÃ©ro -> Numéro) in the source and export again.",
    ),
    Rule(
        "mixed-line-endings", WARNING, "Mixed line endings",
        _FORMAT, "The file mixes CRLF, LF or CR line endings: a sign it was pasted together.",
        "Save the file again from one program so all lines end the same way.",
    ),
    Rule(
        "header-not-recognised", ERROR, "Header not recognised",
        _FORMAT, "The first line is not a header of import columns (a title row above the "
        "header?).", "Delete any line above the header row.",
    ),
    Rule(
        "delimiter-suspect", ERROR, "Wrong delimiter?",
        _FORMAT, "The header reads as a single column: the file probably uses another delimiter.",
        "Export as comma-separated CSV, or check the delimiter.",
    ),
    Rule(
        "delimiter-not-comma", INFO, "Delimiter is not a comma",
        _FORMAT, "The file separates values with another delimiter (semicolon or tab: Excel "
        "in many European locales, or \"Unicode Text\"). The console reads it, but the LMS's course "
        "record importer is documented for comma-separated CSV (the reference LMS also reads ; and "
        "tab; a production site may not).",
        "Save the file as CSV UTF-8 (Comma delimited) before submitting.",
    ),
    Rule(
        "delimiter-unsupported", ERROR, "Pipe-delimited file",
        _FORMAT, "The file separates values with pipes (|). The console reads it, but the LMS's "
        "importer does not: it reads the header as one unknown column and fails the import.",
        "Write a comma-separated copy (`importconsole fix FILE --out NEW.csv --sanitize`), or save the "
        "file as CSV UTF-8 (Comma delimited).",
    ),
    Rule(
        "missing-column", ERROR, "Required column missing",
        _FORMAT, "A column the importer requires is absent (external_user_id or external_email; "
        "for the global importer external_course_id and title).", "Add the column.",
    ),
    Rule(
        "unknown-column", ERROR, "Unknown column",
        _FORMAT, "The header names a column the importer does not know.",
        "Rename it to one of the importer's columns, or remove it.",
    ),
    Rule(
        "misspelled-column", ERROR, "Misspelled column",
        _FORMAT, "The header is close to a known column name but not equal to it.",
        "Rename the column as suggested.",
    ),
    Rule(
        "duplicate-column", ERROR, "Duplicate column",
        _FORMAT, "Two headers name the same column (also after ignoring case and spaces).",
        "Keep one column of each name.",
    ),
    Rule(
        "blank-column", ERROR, "Blank header cell",
        _FORMAT, "A header cell is empty.", "Name the column or delete it.",
    ),
    Rule(
        "ragged-row", ERROR, "Wrong number of cells",
        _FORMAT, "The row has more or fewer cells than the header (often a line break or a "
        "delimiter inside an unquoted value).",
        "Quote values holding the delimiter or a line break, or fix the row.",
    ),
    Rule(
        "unbalanced-quote", ERROR, "Unbalanced quote",
        _FORMAT, "A quote opens a value that runs over line ends and never closes, or closes only "
        "where text follows the quote: the following lines (rows) were swallowed into one value "
        "and are not counted as records. Reported on the line where the quote opened. A quoted "
        "value with line breaks that closes properly is valid CSV and never reported.",
        "Close the quote, or double quotes inside values (\"\").",
    ),
    Rule(
        "stray-quote", ERROR, "Stray quote",
        _FORMAT, "A quote inside an unquoted value, text after a closing quote, or spaces "
        "outside the quotes.", "Quote the whole value and double the quotes inside it (\"\").",
    ),
    Rule(
        "smart-quotes", ERROR, "Smart quotes used as quotes",
        _FORMAT, "A value is wrapped in typographic quotes (“ ” ‘ ’), which CSV does not treat "
        "as quotes.", "Replace them with straight double quotes (\").",
    ),
    Rule(
        "blank-row", WARNING, "Blank row",
        _FORMAT, "An empty line or a row of only delimiters; it is not a record.",
        "Delete the blank row.",
    ),
    Rule(
        "duplicate-row", ERROR, "Identical duplicate row",
        _FORMAT, "The row repeats an earlier row exactly (ids and emails compared as the LMS "
        "matches them): a double-import risk.",
        "Delete the duplicate.",
    ),
    Rule(
        "bad-number", ERROR, "Not a number",
        _FORMAT, "credits must be a decimal number with at most 2 decimals and a dot "
        "(decimal(6,2)).", "Write the amount like 1.5 (no comma, no unit).",
    ),
    Rule(
        "bad-date", ERROR, "Not an ISO 8601 date",
        _FORMAT, "Dates must be ISO 8601 (YYYY-MM-DD, optionally with a time).",
        "Write the date as YYYY-MM-DD, e.g. 2026-03-04.",
    ),
    Rule(
        "bad-complete", ERROR, "complete is not 0 or 1",
        _FORMAT, "complete must be 1 or 0 (or empty).", "Write 1 (complete) or 0 (incomplete).",
    ),
    Rule(
        "missing-user", ERROR, "No learner on the row",
        _FORMAT, "The row has neither external_user_id nor external_email.",
        "Fill in one of them.",
    ),
    Rule(
        "missing-value", ERROR, "Required value missing",
        _FORMAT, "The global importer needs external_course_id and title on every row.",
        "Fill in the value.",
    ),
    Rule(
        "value-too-long", ERROR, "Value too long",
        _FORMAT, "external_course_id is at most 128 characters.", "Shorten the value.",
    ),
    Rule(
        "course-mismatch", ERROR, "Row names another course",
        _FORMAT, "The course-level importer imports into one course; this row names another "
        "external_course_id.", "Remove the row, or import it into its own course.",
    ),
    Rule(
        "unknown-credit-type", ERROR, "Unknown credit type",
        _FORMAT, "credit_type is not a machine name of the site's credit types (or the course "
        "does not offer it).", "Use the machine name of one of the site's credit types.",
        needs_lms=True,
    ),
    Rule(
        "completed-earlier-in-file", ERROR, "Completed by an earlier row of the file",
        "Updating enrollments",
        "An earlier row of the same file completes this learner's enrollment in this course; this "
        "row (complete=0 or empty) would update a COMPLETE enrollment, which the LMS refuses. Checked "
        "for rows with the same learner, course and credit type (compared as the LMS matches them).",
        "Delete the row, or put it before the completion.",
    ),
    Rule(
        "credits-without-credit-type", ERROR, "Credits without a credit type",
        "data dictionary",
        "credits is filled in but credit_type is empty: the LMS cannot tell which credit it is and "
        "refuses the row.",
        "Fill in credit_type (a machine name such as ama), or empty credits.",
    ),
    Rule(
        "variable-credit-without-amount", ERROR, "Variable credit without an amount",
        "Awarding partial or variable credit",
        "credit_type names a credit type that is Variable in the course, but credits is empty: "
        "the LMS cannot tell how much to record and refuses the row.",
        "Fill in credits (within the course's range), or empty credit_type.",
        needs_lms=True,
    ),
    Rule(
        "unknown-course", ERROR, "Unknown course",
        _FORMAT, "The course named for the course-level importer does not exist.",
        "Check the course's external id, or create the course first.", needs_lms=True,
    ),
    Rule(
        "formula-like", WARNING, "Formula-like value",
        _FORMAT, "The value starts with = + - @, a tab or a carriage return: spreadsheets run it "
        "as a formula. The import file keeps it as it is; reports escape it with a leading '.",
        "Check the value is meant; remove the leading character if not.",
    ),
    Rule(
        "id-whitespace", WARNING, "Spaces around an identifier",
        _FORMAT, "An id or email has spaces around it: it may not match the LMS's record.",
        "Trim the value (`importconsole fix --sanitize`).",
    ),
    Rule(
        "unicode-normalisation", WARNING, "Same text, different Unicode form",
        _FORMAT, "Two values look identical but differ in Unicode form (NFC vs NFD, e.g. "
        "composed and decomposed é): the LMS treats them as different.",
        "Write both the same way (`importconsole fix --sanitize` normalises to NFC).",
    ),
    # Checked at submit (operations.submit), listed here so every id lives in one place.
    Rule(
        "file-changed", ERROR, "File changed since validation",
        "submit", "The file on disk differs (SHA-256) from the one validated.",
        "Validate the file again before submitting.",
    ),
    Rule(
        "already-submitted", WARNING, "Same file already imported",
        "submit", "An import with the same file (SHA-256) exists on the LMS.",
        "Check the earlier import before submitting again.", needs_lms=True,
    ),
]

RULES: dict[str, Rule] = {rule.id: rule for rule in _RULES}
assert len(RULES) == len(_RULES), "duplicate rule id"

# Rules that run on each file validate() reads (the submit-time ones are not among them).
FILE_RULES = tuple(r for r in RULES if RULES[r].section != "submit")
LMS_RULES = tuple(r for r in FILE_RULES if RULES[r].needs_lms)


def rules_markdown() -> str:
    """docs/rules.md, generated (a test keeps the committed file in step)."""
    lines = [
        "# Rules",
        "",
        "Generated from `src/importconsole/importfile/catalogue.py` by "
        "`python -m importconsole.importfile.catalogue > docs/rules.md`; do not edit by hand.",
        "",
        "Severity: `error` makes `importconsole validate` exit 1; `warning` and `info` do not. "
        "Rules marked LMS need a profile: with `--offline` they are listed as not checked.",
        "",
        "| id | severity | LMS | title | page section |",
        "|---|---|---|---|---|",
    ]
    for rule in RULES.values():
        lines.append(
            f"| `{rule.id}` | {rule.severity} | {'yes' if rule.needs_lms else ''} | {rule.title} | {rule.section} |"
        )
    lines.append("")
    for rule in RULES.values():
        lines += [f"## `{rule.id}`", "", f"**{rule.title}** ({rule.severity}; {rule.section})", "",
                  rule.explanation, "", f"Fix: {rule.fix}", ""]
    return "\n".join(lines)


if __name__ == "__main__":  # regenerates docs/rules.md (see its first line)
    import sys

    sys.stdout.write(rules_markdown())
