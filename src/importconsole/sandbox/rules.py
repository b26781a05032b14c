"""What the LMS does with one import row: behaviours 1-7 of DOMAIN.md, traps included.

Every function here runs inside the caller's transaction (one per row).
"""

from __future__ import annotations

import json
import math
import sqlite3
from dataclasses import dataclass
from datetime import datetime

from importconsole.sandbox.db import now


@dataclass
class RowOutcome:
    status: str                    # imported | held | refused | failed
    message: str | None = None
    enrollment_id: int | None = None


class RowRefused(Exception):
    """Bad data in a row: the row fails, the import goes on."""


def _iso(value: str, column: str) -> str | None:
    if not value:
        return None
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise RowRefused(f"{column} {value!r} is not an ISO 8601 date (YYYY-MM-DD)") from None
    return value


def process_record(conn: sqlite3.Connection, imp, fields: dict[str, str], course=None) -> RowOutcome:
    """One row of import `imp` (a row of table imports). `course`: the course-level import's course, if known."""
    try:
        return _process(conn, imp, fields, course)
    except RowRefused as exc:
        return RowOutcome("failed", str(exc))


def _process(conn, imp, fields, course=None) -> RowOutcome:
    ext_user = fields.get("external_user_id", "").strip()
    email = fields.get("external_email", "").strip()
    if not ext_user and not email:
        raise RowRefused("the row has neither external_user_id nor external_email")
    _check_values(fields)
    importer = imp["importer"]
    if importer == "course" and course is None:
        course = conn.execute("SELECT * FROM courses WHERE external_id = ?", (imp["course_external_id"],)).fetchone()
    elif importer == "global":
        course = _global_course(conn, imp, fields)
    _credit_for(conn, course, fields)  # refuse bad credit before holding the row
    user = find_user(conn, ext_user, email)
    if user is None:
        # Behaviour 3: the row waits in the holding table until the account appears.
        conn.execute(
            """INSERT INTO held_rows (import_id, row, importer, course_id, external_user_id, email_lower, record, held_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
            (imp["id"], fields["__row__"], importer, course["id"], ext_user or None, email.lower() or None,
             json.dumps({k: v for k, v in fields.items() if not k.startswith("__")}), now()),
        )
        return RowOutcome("held", "user not found: the row waits in the holding table until the account exists")
    return apply_record(conn, user["id"], course, fields, importer=importer, import_id=imp["id"])


def _check_values(fields) -> None:
    complete = fields.get("complete", "").strip()
    if complete not in ("", "0", "1"):
        raise RowRefused(f"complete is {complete!r}; it must be 1 or 0")
    credits = fields.get("credits", "").strip()
    if credits:
        try:
            finite = math.isfinite(float(credits))
        except ValueError:
            finite = False
        if not finite:  # float() also reads nan and inf: a credit amount never is one
            raise RowRefused(f"credits {credits!r} is not a number like 1.25")
    for column in ("enrollment_start", "enrollment_end", "date_completed", "credit_expiration"):
        _iso(fields.get(column, "").strip(), column)


def _global_course(conn, imp, fields):
    ext_course = fields.get("external_course_id", "").strip()
    if not ext_course:
        raise RowRefused("external_course_id is required by the global importer")
    if len(ext_course) > 128:
        raise RowRefused("external_course_id is longer than 128 characters")
    course = conn.execute("SELECT * FROM courses WHERE external_id = ?", (ext_course,)).fetchone()
    if course is None:
        # Behaviour 2: an unknown course becomes a shell: no certificate, no required objects.
        title = fields.get("title", "").strip() or ext_course
        cur = conn.execute(
            "INSERT INTO courses (external_id, title, has_certificate, required_objects, is_shell, created_by_import_id) VALUES (?, ?, 0, 0, 1, ?)",
            (ext_course, title, imp["id"]),
        )
        course = conn.execute("SELECT * FROM courses WHERE id = ?", (cur.lastrowid,)).fetchone()
    return course


def find_user(conn, ext_user: str, email: str):
    if ext_user:
        user = conn.execute("SELECT * FROM users WHERE external_user_id = ?", (ext_user,)).fetchone()
        if user is not None:
            return user
    if email:
        return conn.execute("SELECT * FROM users WHERE email_lower = ?", (email.lower(),)).fetchone()
    return None


def _credit_for(conn, course, fields) -> tuple[str, float] | None:
    """The imported credit a row carries, as the LMS records it, or None."""
    credit_type = fields.get("credit_type", "").strip()
    credits = fields.get("credits", "").strip()
    if not credit_type and not credits:
        return None
    if not credit_type:
        raise RowRefused("credits is set but credit_type is empty")
    known = conn.execute("SELECT 1 FROM credit_types WHERE machine_name = ?", (credit_type,)).fetchone()
    if known is None:
        raise RowRefused(f"credit_type {credit_type!r} is not a credit type of this site")
    cc = conn.execute(
        "SELECT * FROM course_credits WHERE course_id = ? AND credit_type = ?", (course["id"], credit_type)
    ).fetchone()
    if cc is None:
        if course["is_shell"]:
            # A shell has no credit settings (behaviour 2): legacy credit is recorded as the row gives it.
            if not credits:
                raise RowRefused(f"credits is empty, and course shell {course['external_id']} has no credit settings "
                                 f"to award {credit_type} from")
            return credit_type, round(float(credits), 2)
        raise RowRefused(f"course {course['external_id']} does not offer {credit_type} credit")
    if not cc["enable_variable_credit"]:
        # Behaviour 1: partial (or any) credit on a non-variable type records the MAXIMUM.
        return credit_type, float(cc["max"])
    if not credits:
        raise RowRefused(f"credits is empty but {credit_type} credit is variable in {course['external_id']}")
    amount = float(credits)
    if amount < cc["min"] - 1e-9 or amount > cc["max"] + 1e-9:
        raise RowRefused(f"credits {credits} is outside {cc['min']:g}-{cc['max']:g} for {credit_type} in {course['external_id']}")
    return credit_type, round(amount, 2)


def apply_record(conn, user_id: int, course, fields: dict, *, importer: str, import_id: int | None,
                 new_user_zero_objects: bool = False) -> RowOutcome:
    enrollment = conn.execute(
        "SELECT * FROM enrollments WHERE user_id = ? AND course_id = ?", (user_id, course["id"])
    ).fetchone()
    complete = fields.get("complete", "").strip() == "1"
    credit = _credit_for(conn, course, fields)
    if new_user_zero_objects:
        # Behaviour 3: 0 required objects, new account: complete at once, every credit at its max.
        complete, credit = True, None
    stamp = now()
    if enrollment is not None and enrollment["status"] == "complete":
        if complete and import_id is not None and enrollment["import_id"] == import_id:
            # "Multiple credit types": one row per type; a later completion row of the SAME import adds
            # its credit. A type the enrollment already holds is an update, refused (duplicate-credit-row).
            if credit is not None and conn.execute(
                    "SELECT 1 FROM credit_records WHERE enrollment_id = ? AND credit_type = ?",
                    (enrollment["id"], credit[0])).fetchone():
                return RowOutcome("refused", f"cannot update: the learner already holds {credit[0]} credit in "
                                  f"{course['external_id']} (one row per credit type)", enrollment["id"])
            _add_credit(conn, enrollment["id"], user_id, course, credit, importer, import_id, fields, stamp,
                        award_missing=True)
            return RowOutcome("imported", None, enrollment["id"])
        # Behaviour 5: a complete enrollment cannot be updated by import; the file goes on.
        return RowOutcome("refused", f"cannot update: the enrollment in {course['external_id']} is already complete",
                          enrollment["id"])
    date_completed = (fields.get("date_completed", "").strip() or None) if complete else None
    values = {
        "status": "complete" if complete else "incomplete",
        "date_completed": date_completed,
        "enrollment_start": fields.get("enrollment_start", "").strip() or None,
        "enrollment_end": fields.get("enrollment_end", "").strip() or None,
        "participant_category": fields.get("participant_category", "").strip() or None,
    }
    if enrollment is None:
        cur = conn.execute(
            """INSERT INTO enrollments (user_id, course_id, status, date_completed, enrollment_start, enrollment_end,
                                        participant_category, importer, import_id, created_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (user_id, course["id"], values["status"], values["date_completed"], values["enrollment_start"],
             values["enrollment_end"], values["participant_category"], importer, import_id, stamp),
        )
        enrollment_id = cur.lastrowid
    else:
        enrollment_id = enrollment["id"]
        conn.execute(
            """UPDATE enrollments SET status = ?, date_completed = ?,
                 enrollment_start = COALESCE(?, enrollment_start), enrollment_end = COALESCE(?, enrollment_end),
                 participant_category = COALESCE(?, participant_category), importer = ?, import_id = ?
               WHERE id = ?""",
            (values["status"], values["date_completed"], values["enrollment_start"], values["enrollment_end"],
             values["participant_category"], importer, import_id, enrollment_id),
        )
    if complete and enrollment is not None:
        # Behaviour 5: the completion's credit replaces what the incomplete enrollment carried.
        _delete_credit(conn, enrollment_id)
    elif credit is not None and enrollment is not None:
        # Behaviour 4 on an existing incomplete enrollment: the row's credit replaces that type's.
        _delete_credit(conn, enrollment_id, credit[0])
    if credit is not None or complete:
        _add_credit(conn, enrollment_id, user_id, course, credit, importer, import_id, fields, stamp,
                    every_type=new_user_zero_objects)
    return RowOutcome("imported", None, enrollment_id)


def _add_credit(conn, enrollment_id, user_id, course, credit, importer, import_id, fields, stamp, *,
                every_type: bool = False, award_missing: bool = False) -> None:
    """The row's imported credit, or (a completion without credit) the awarded credit of behaviour 6."""
    if credit is not None:
        # Imported credit is never queued for reporting (behaviour 6).
        conn.execute(
            """INSERT INTO credit_records (enrollment_id, user_id, course_id, credit_type, amount, source, importer,
                                           import_id, credit_expiration, created_at)
               VALUES (?, ?, ?, ?, ?, 'import', ?, ?, ?, ?)""",
            (enrollment_id, user_id, course["id"], credit[0], credit[1], importer, import_id,
             fields.get("credit_expiration", "").strip() or None, stamp),
        )
    else:
        _award(conn, enrollment_id, user_id, course, importer, import_id, stamp, every_type=every_type,
               only_missing=award_missing)


def _delete_credit(conn, enrollment_id: int, credit_type: str | None = None) -> None:
    where, args = "enrollment_id = ?", [enrollment_id]
    if credit_type:
        where += " AND credit_type = ?"
        args.append(credit_type)
    conn.execute(f"DELETE FROM reporting_queue WHERE credit_record_id IN (SELECT id FROM credit_records WHERE {where})", args)
    conn.execute(f"DELETE FROM credit_records WHERE {where}", args)


def _award(conn, enrollment_id, user_id, course, importer, import_id, stamp, *, every_type: bool,
           only_missing: bool = False) -> None:
    """Behaviour 6: completion without credit -> awarded at max, queued to each reports_to entity.

    only_missing: a repeated completion row awards only the types the enrollment does not hold yet."""
    credits = conn.execute(
        """SELECT cc.*, ct.reports_to FROM course_credits cc JOIN credit_types ct ON ct.machine_name = cc.credit_type
           WHERE cc.course_id = ? ORDER BY cc.credit_type""",
        (course["id"],),
    ).fetchall()
    held = {r[0] for r in conn.execute("SELECT credit_type FROM credit_records WHERE enrollment_id = ?",
                                       (enrollment_id,))} if only_missing else set()
    for cc in credits:
        if cc["enable_variable_credit"] and not every_type:
            continue  # variable credit is never awarded automatically
        if cc["credit_type"] in held:
            continue
        cur = conn.execute(
            """INSERT INTO credit_records (enrollment_id, user_id, course_id, credit_type, amount, source, importer,
                                           import_id, created_at) VALUES (?, ?, ?, ?, ?, 'awarded', ?, ?, ?)""",
            (enrollment_id, user_id, course["id"], cc["credit_type"], cc["max"], importer, import_id, stamp),
        )
        for entity in json.loads(cc["reports_to"]):
            if entity == "pars" and importer == "global":
                continue  # behaviour 7: global-importer records never reach PARS
            conn.execute(
                """INSERT INTO reporting_queue (entity, credit_record_id, user_id, course_id, credit_type, amount, queued_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?)""",
                (entity, cur.lastrowid, user_id, course["id"], cc["credit_type"], cc["max"], stamp),
            )


def assign_held_rows(conn, user) -> int:
    """Behaviour 3: a new account picks up the rows that waited for it. Runs in the caller's transaction."""
    held = conn.execute(
        """SELECT * FROM held_rows WHERE assigned_user_id IS NULL
             AND ((external_user_id IS NOT NULL AND external_user_id = ?) OR (email_lower IS NOT NULL AND email_lower = ?))
           ORDER BY id""",
        (user["external_user_id"], user["email_lower"]),
    ).fetchall()
    stamp = now()
    for h in held:
        course = conn.execute("SELECT * FROM courses WHERE id = ?", (h["course_id"],)).fetchone()
        fields = json.loads(h["record"])
        try:
            outcome = apply_record(conn, user["id"], course, fields, importer=h["importer"], import_id=h["import_id"],
                                   new_user_zero_objects=course["required_objects"] == 0)
        except RowRefused as exc:
            outcome = RowOutcome("failed", str(exc))
        conn.execute("UPDATE held_rows SET assigned_user_id = ?, assigned_at = ?, enrollment_id = ? WHERE id = ?",
                     (user["id"], stamp, outcome.enrollment_id, h["id"]))
        note = f"held; assigned to user {user['id']} at {stamp}: {outcome.status}"
        if outcome.message:
            note += f" ({outcome.message})"
        conn.execute("UPDATE import_rows SET message = ?, enrollment_id = ? WHERE import_id = ? AND row = ?",
                     (note, outcome.enrollment_id, h["import_id"], h["row"]))
    return len(held)
