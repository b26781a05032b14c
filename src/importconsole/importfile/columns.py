"""The import file's columns, and which header cell names which column: the one matcher that
validate, fix, credit fixes and recover use.

The LMS matches a header cell to a column by lower-casing it and trimming the spaces around it
(EthosCE's Feeds CSV parser: `trim(drupal_strtolower($title))`; the reference LMS does the same),
so `External_User_ID` is the external_user_id column there, and here. Spaces and invisible
characters the LMS does not forgive (NBSP, ZWSP, a BOM, doubled spaces) are also set aside here, so
such a header still names the column its author meant: validate reports it (`header-whitespace`:
the import hangs on it) and `fix --sanitize` renames it.
"""

from __future__ import annotations

from collections.abc import Sequence

from . import safe_text

# EthosCE's column names (DOMAIN.md: "The import file").
COLUMNS = (
    "external_user_id", "external_email", "first_name", "last_name", "external_course_id", "title",
    "enrollment_start", "enrollment_end", "participant_category", "complete", "date_completed",
    "credit_type", "credits", "credit_expiration",
)
DATE_COLUMNS = ("enrollment_start", "enrollment_end", "date_completed", "credit_expiration")
ID_COLUMNS = ("external_user_id", "external_email", "external_course_id", "credit_type")


def column_key(cell: str) -> str:
    """The column a header cell names: case ignored, spaces around it trimmed, as the LMS matches
    it; special characters dropped and inner spaces made single (what its author meant)."""
    return safe_text.clean_header(cell).lower()


def find_columns(header: Sequence[str]) -> dict[str, int]:
    """Column name -> index of the header cell that names it. A column named twice is its last
    cell, the one the LMS reads (Feeds and the reference LMS map a row's cells by name, the later
    over the earlier); validate reports the second as `duplicate-column`."""
    return {column_key(cell): i for i, cell in enumerate(header)}


def cell_value(cells: Sequence[str], columns: dict[str, int], name: str) -> str:
    """The row's value in column `name`, trimmed; "" when the header has no such column or the
    row stops short of it."""
    i = columns.get(name)
    return cells[i].strip() if i is not None and i < len(cells) else ""
