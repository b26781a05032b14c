"""Everything that will go wrong with an import file, before the LMS sees it.

`validate(path, importer=..., course_external_id=..., facts=...)` reads the file once, in chunks
of about 256 KiB (`scan`). Each chunk gets the offline rules column-wise (set operations and finds
in C rather than a Python test per cell), then the rules that need the LMS, through `facts` in
batches of at most 1,000 records. With `OfflineFacts` those rules are listed in `not_checked`.
Repeated learner/course/credit-type keys are settled by a second pass over the file, only when
there are any. Submit runs exactly this.

One module per concern: `run` (the pass), `report` (findings), `header`, `rows` (the row rules),
`values` (what a good value looks like), `quotes`, `keys` (how the LMS matches ids),
`duplicates`, `lms_checks` (the rules that need the LMS).
"""

from __future__ import annotations

from ..columns import COLUMNS, DATE_COLUMNS, ID_COLUMNS
from ..reader import ImportFileError
from .keys import FOLDED_COLUMNS, KEY_COLUMNS, key_column, key_value
from .lms_checks import COURSE_RULES
from .quotes import QuoteProblem
from .report import MAX_FINDINGS_PER_RULE, Finding, ValidationReport
from .run import validate
from .values import COURSE_ID_MAX, CREDIT_TYPE_SEPARATORS

__all__ = [
    "COLUMNS", "COURSE_ID_MAX", "COURSE_RULES", "CREDIT_TYPE_SEPARATORS", "DATE_COLUMNS", "FOLDED_COLUMNS",
    "ID_COLUMNS", "KEY_COLUMNS", "MAX_FINDINGS_PER_RULE", "Finding", "ImportFileError", "QuoteProblem",
    "ValidationReport", "key_column", "key_value", "validate",
]
