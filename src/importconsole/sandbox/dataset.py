"""Datasets the reference LMS starts from: the built-in demo, or a JSON/TOML file (docs/dataset.md)."""

from __future__ import annotations

import json
import random
import sqlite3
import tomllib
from pathlib import Path

from importconsole.sandbox.db import Tx, now

ROLES = ("site_admin", "course_admin")
ENTITIES = ("pars", "cpe_monitor", "ams")

DEMO_TOKENS = [
    {"token": "demo-admin-token", "username": "admin", "role": "site_admin", "display_name": "Dana Admin"},
    {"token": "demo-course-admin-token", "username": "courseadmin", "role": "course_admin", "display_name": "Chris Course-Admin"},
]


class DatasetError(Exception):
    """A dataset file that cannot be loaded; the message names the file and the entry."""


def load_dataset_file(path: Path) -> dict:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read the dataset file ({exc.strerror}).") from None
    try:
        if path.suffix.lower() == ".toml":
            return tomllib.loads(raw.decode("utf-8"))
        return json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        kind = "TOML" if path.suffix.lower() == ".toml" else "JSON"
        raise DatasetError(f"{path}: not valid {kind} ({exc}). See docs/dataset.md for the format.") from None


def seed(conn: sqlite3.Connection, data: dict, *, where: str = "dataset") -> dict[str, str]:
    """Load a dataset into an empty database in one transaction (all or nothing). Returns role -> first token."""
    if not isinstance(data, dict):
        raise DatasetError(f"{where}: the top level must be an object with credit_types, courses, users, enrollments, tokens.")
    unknown = set(data) - {"credit_types", "courses", "users", "enrollments", "tokens"}
    if unknown:
        raise DatasetError(f"{where}: unknown key(s) {sorted(unknown)}; expected credit_types, courses, users, enrollments, tokens.")
    stamp = now()
    tokens: dict[str, str] = {}
    with Tx(conn):
        for i, ct in enumerate(_section(data, "credit_types", where)):
            _need(ct, ("machine_name",), where, "credit_types", i)
            reports_to = ct.get("reports_to", [])
            if not isinstance(reports_to, list):
                raise DatasetError(f"{where}: credit_types[{i}].reports_to must be a list, e.g. [\"pars\"].")
            bad = [e for e in reports_to if e not in ENTITIES]
            if bad:
                raise DatasetError(f"{where}: credit_types[{i}].reports_to has {bad}; allowed: {list(ENTITIES)}.")
            _insert(conn, where, f"credit_types[{i}]", ct,
                    "INSERT INTO credit_types (machine_name, label, reports_to) VALUES (?, ?, ?)",
                    (ct["machine_name"], ct.get("label", ct["machine_name"]), json.dumps(reports_to)))
        known_types = {r[0] for r in conn.execute("SELECT machine_name FROM credit_types")}
        for i, course in enumerate(_section(data, "courses", where)):
            _need(course, ("external_id",), where, "courses", i)
            at = f"courses[{i}]"
            cur = _insert(conn, where, at, course,
                          "INSERT INTO courses (external_id, title, has_certificate, required_objects, is_shell) VALUES (?, ?, ?, ?, 0)",
                          (course["external_id"], course.get("title", course["external_id"]),
                           int(bool(course.get("has_certificate", True))),
                           _number(course, "required_objects", 0, where, at, int)))
            for j, credit in enumerate(_section(course, "credits", where, at)):
                cat = f"{at}.credits[{j}]"
                _need(credit, ("credit_type", "max"), where, f"{at}.credits", j)
                if credit["credit_type"] not in known_types:
                    raise DatasetError(
                        f"{where}: {cat} names credit type {credit['credit_type']!r}, which is not in credit_types."
                    )
                _insert(conn, where, cat, credit,
                        "INSERT INTO course_credits (course_id, credit_type, min, max, increments, enable_variable_credit) VALUES (?, ?, ?, ?, ?, ?)",
                        (cur.lastrowid, credit["credit_type"], _number(credit, "min", 0, where, cat),
                         _number(credit, "max", None, where, cat), _number(credit, "increments", 0.25, where, cat),
                         int(bool(credit.get("enable_variable_credit", False)))))
        for i, user in enumerate(_section(data, "users", where)):
            _need(user, (), where, "users", i)
            if not user.get("external_user_id") and not user.get("email"):
                raise DatasetError(f"{where}: users[{i}] needs external_user_id or email.")
            email = user.get("email")
            _insert(conn, where, f"users[{i}]", user,
                    "INSERT INTO users (external_user_id, email, email_lower, first_name, last_name, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (user.get("external_user_id"), email, email.lower() if isinstance(email, str) else email,
                     user.get("first_name", ""), user.get("last_name", ""), stamp))
        for i, enr in enumerate(_section(data, "enrollments", where)):
            _seed_enrollment(conn, enr, where, i, stamp)
        for i, tok in enumerate(_section(data, "tokens", where)):
            _need(tok, ("token", "role"), where, "tokens", i)
            if tok["role"] not in ROLES:
                raise DatasetError(f"{where}: tokens[{i}].role is {tok['role']!r}; allowed: {list(ROLES)}.")
            username = tok.get("username", tok["role"])
            _insert(conn, where, f"tokens[{i}]", tok,
                    "INSERT INTO tokens (token, username, role, display_name) VALUES (?, ?, ?, ?)",
                    (tok["token"], username, tok["role"], tok.get("display_name", username)))
            tokens.setdefault(tok["role"], tok["token"])
    return tokens


def _section(parent: dict, key: str, where: str, at: str = "") -> list:
    value = parent.get(key, [])
    if not isinstance(value, list):
        raise DatasetError(f"{where}: {at + '.' if at else ''}{key} must be a list.")
    return value


def _number(entry: dict, key: str, default, where: str, at: str, kind=float):
    value = entry.get(key, default)
    try:
        if isinstance(value, bool) or (kind is int and isinstance(value, float) and not value.is_integer()):
            raise ValueError
        return kind(value)
    except (TypeError, ValueError):
        raise DatasetError(f"{where}: {at}.{key} is {value!r}; it must be a {'whole ' if kind is int else ''}number.") from None


def _insert(conn, where: str, at: str, entry: dict, sql: str, args: tuple):
    try:
        return conn.execute(sql, args)
    except sqlite3.IntegrityError as exc:
        # "UNIQUE constraint failed: courses.external_id": the dataset names something twice.
        column = str(exc).rsplit(".", 1)[-1] if "UNIQUE" in str(exc) else ""
        if column == "email_lower":
            raise DatasetError(f"{where}: {at}: email {entry.get('email')!r} is already in the dataset "
                               "(emails are compared ignoring case); each must be unique.") from None
        if column == "course_id":
            raise DatasetError(f"{where}: {at}: this learner already has an enrollment in "
                               f"{entry.get('course_external_id')!r}; one per learner and course.") from None
        if column in entry:
            raise DatasetError(f"{where}: {at}: {column} {entry[column]!r} is already in the dataset; "
                               "each must be unique.") from None
        raise DatasetError(f"{where}: {at} conflicts with an earlier entry ({exc}).") from None
    except (sqlite3.InterfaceError, sqlite3.ProgrammingError, TypeError):
        # A list or an object where a string or a number belongs.
        raise DatasetError(f"{where}: {at} holds a value of the wrong kind (a list or object where text or a "
                           "number belongs); see docs/dataset.md.") from None


def _need(entry, keys, where, section, i) -> None:
    if not isinstance(entry, dict):
        raise DatasetError(f"{where}: {section}[{i}] must be an object.")
    missing = [k for k in keys if k not in entry or entry[k] in (None, "")]
    if missing:
        raise DatasetError(f"{where}: {section}[{i}] is missing {', '.join(missing)}.")


def _seed_enrollment(conn, enr: dict, where: str, i: int, stamp: str) -> None:
    _need(enr, ("course_external_id",), where, "enrollments", i)
    at = f"enrollments[{i}]"
    if enr.get("external_user_id"):
        user = conn.execute("SELECT id FROM users WHERE external_user_id = ?", (str(enr["external_user_id"]),)).fetchone()
    elif enr.get("email"):
        user = conn.execute("SELECT id FROM users WHERE email_lower = ?", (str(enr["email"]).lower(),)).fetchone()
    else:
        raise DatasetError(f"{where}: {at} needs external_user_id or email of a user in users.")
    if user is None:
        raise DatasetError(f"{where}: {at} names a user that is not in users.")
    course = conn.execute("SELECT id FROM courses WHERE external_id = ?", (str(enr["course_external_id"]),)).fetchone()
    if course is None:
        raise DatasetError(f"{where}: {at} names course {enr['course_external_id']!r}, which is not in courses.")
    status = enr.get("status", "incomplete")
    if status not in ("incomplete", "complete"):
        raise DatasetError(f"{where}: {at}.status is {status!r}; allowed: incomplete, complete.")
    cur = _insert(conn, where, at, enr,
                  """INSERT INTO enrollments (user_id, course_id, status, date_completed, enrollment_start, enrollment_end,
                                              participant_category, importer, import_id, created_at)
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, ?)""",
                  (user["id"], course["id"], status, enr.get("date_completed"), enr.get("enrollment_start"),
                   enr.get("enrollment_end"), enr.get("participant_category"), enr.get("importer"), stamp))
    for j, credit in enumerate(_section(enr, "credits", where, at)):
        _need(credit, ("credit_type", "amount"), where, f"{at}.credits", j)
        cat = f"{at}.credits[{j}]"
        if conn.execute("SELECT 1 FROM course_credits WHERE course_id = ? AND credit_type = ?",
                        (course["id"], credit["credit_type"])).fetchone() is None:
            raise DatasetError(f"{where}: {cat} names credit type {credit['credit_type']!r}, which course "
                               f"{enr['course_external_id']!r} does not offer (its courses[].credits).")
        source = credit.get("source", "import")
        if source not in ("import", "awarded"):
            raise DatasetError(f"{where}: {cat}.source is {source!r}; allowed: import, awarded.")
        _insert(conn, where, cat, credit,
                """INSERT INTO credit_records (enrollment_id, user_id, course_id, credit_type, amount, source, importer,
                                               import_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?)""",
                (cur.lastrowid, user["id"], course["id"], credit["credit_type"], _number(credit, "amount", None, where, cat),
                 source, credit.get("importer", enr.get("importer")), stamp))


# ---- the demo dataset ----

FIRST = ["José", "Zoë", "Łukasz", "Amara", "Priya", "Liam", "Sofia", "Mateo", "Aiko", "Noah", "Fatima", "Olivia",
         "Chen", "Grace", "Omar", "Ingrid", "Ravi", "Siobhán", "Kwame", "Elena"]
LAST = ["García", "O'Brien", "Nowak", "Smith-Jones", "Okafor", "Patel", "Müller", "Nguyen", "Tanaka", "Rossi",
        "Haddad", "Johansson", "Kowalski", "Dubois", "Silva", "Kim", "Ivanova", "Murphy", "Mensah", "Cohen"]

DEMO_COURSES = [
    # Non-variable AMA + ABIM MOC, several required objects, certificate: the usual CME activity.
    {"external_id": "CARD-101", "title": "Cardiology Update 2026", "has_certificate": True, "required_objects": 3,
     "credits": [{"credit_type": "ama", "min": 0.25, "max": 1.5, "increments": 0.25, "enable_variable_credit": False},
                 {"credit_type": "moc_abim", "min": 0.25, "max": 1.5, "increments": 0.25, "enable_variable_credit": False}]},
    # Variable pharmacy CPE (reports to CPE Monitor).
    {"external_id": "PHARM-201", "title": "Opioid Stewardship for Pharmacists", "has_certificate": True, "required_objects": 2,
     "credits": [{"credit_type": "acpe", "min": 0.25, "max": 2.0, "increments": 0.25, "enable_variable_credit": True}]},
    # 0 required objects: a new user enrolled here completes at once (behaviour 3).
    {"external_id": "NURS-301", "title": "Wound Care Essentials", "has_certificate": True, "required_objects": 0,
     "credits": [{"credit_type": "ancc", "min": 0.5, "max": 1.0, "increments": 0.5, "enable_variable_credit": False}]},
    # Variable AMA, no certificate, 0 required objects.
    {"external_id": "GRAND-ROUNDS", "title": "Grand Rounds (weekly)", "has_certificate": False, "required_objects": 0,
     "credits": [{"credit_type": "ama", "min": 0.25, "max": 1.0, "increments": 0.25, "enable_variable_credit": True},
                 {"credit_type": "cme_other", "min": 1.0, "max": 1.0, "increments": 1.0, "enable_variable_credit": False}]},
    # Credit that reports nowhere.
    {"external_id": "ETHICS-110", "title": "Ethics in Practice", "has_certificate": False, "required_objects": 4,
     "credits": [{"credit_type": "cme_other", "min": 0.5, "max": 2.0, "increments": 0.5, "enable_variable_credit": False}]},
    # Old board review: the kind of data the global importer is for.
    {"external_id": "LEGACY-2019", "title": "Board Review 2019 (legacy)", "has_certificate": True, "required_objects": 5,
     "credits": [{"credit_type": "ama", "min": 1.0, "max": 10.0, "increments": 0.5, "enable_variable_credit": False}]},
]

DEMO_USER_COUNT = 300


def demo_user(n: int) -> dict:
    first = FIRST[n % len(FIRST)]
    last = LAST[(n * 7) % len(LAST)]
    slug = (first + "." + last).lower().replace("'", "").replace(" ", "")
    slug = slug.encode("ascii", "ignore").decode() or "learner"
    return {"external_user_id": f"U{n:04d}", "email": f"{slug}{n}@example.org", "first_name": first, "last_name": last}


def demo_dataset() -> dict:
    """The built-in demo. Deterministic: examples/ and docs/sandbox.md name its users and enrollments."""
    rng = random.Random(2026)
    users = [demo_user(n) for n in range(1, DEMO_USER_COUNT + 1)]
    enrollments: list[dict] = []
    # Fixed enrollments the example files rely on (docs/sandbox.md lists them).
    enrollments += [
        # U0001 completed CARD-101: a row for it is refused "cannot update" (behaviour 5).
        {"external_user_id": "U0001", "course_external_id": "CARD-101", "status": "complete",
         "date_completed": "2026-01-15", "enrollment_start": "2026-01-10", "importer": "course",
         "credits": [{"credit_type": "ama", "amount": 1.5, "source": "import"}]},
        # U0002-U0006: incomplete CARD-101 carrying imported credit (the page's credit-on-incomplete mess).
        *[{"external_user_id": f"U{n:04d}", "course_external_id": "CARD-101", "status": "incomplete",
           "enrollment_start": "2026-02-01", "importer": "course",
           "credits": [{"credit_type": "ama", "amount": 1.5, "source": "import"}]} for n in range(2, 7)],
        # U0007-U0009: incomplete PHARM-201 carrying imported credit.
        *[{"external_user_id": f"U{n:04d}", "course_external_id": "PHARM-201", "status": "incomplete",
           "enrollment_start": "2026-02-03", "importer": "course",
           "credits": [{"credit_type": "acpe", "amount": 1.0, "source": "import"}]} for n in range(7, 10)],
        # U0010: incomplete NURS-301, no credit.
        {"external_user_id": "U0010", "course_external_id": "NURS-301", "status": "incomplete", "enrollment_start": "2026-03-01"},
    ]
    taken = {(e["external_user_id"], e["course_external_id"]) for e in enrollments}
    # The rest: random history for users U0050 and up, so U0011-U0049 stay free for examples.
    for n in range(50, DEMO_USER_COUNT + 1):
        for course in DEMO_COURSES:
            if rng.random() > 0.25 or (f"U{n:04d}", course["external_id"]) in taken:
                continue
            complete = rng.random() < 0.6
            credit = course["credits"][0]
            enr = {"external_user_id": f"U{n:04d}", "course_external_id": course["external_id"],
                   "status": "complete" if complete else "incomplete",
                   "enrollment_start": f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"}
            if complete:
                enr["date_completed"] = f"2026-{rng.randint(1, 10):02d}-{rng.randint(1, 28):02d}"
                enr["credits"] = [{"credit_type": credit["credit_type"], "amount": credit["max"], "source": "awarded"}]
            elif rng.random() < 0.2:
                enr["credits"] = [{"credit_type": credit["credit_type"], "amount": credit["max"], "source": "import"}]
            enrollments.append(enr)
    return {
        "credit_types": [
            {"machine_name": "ama", "label": "AMA PRA Category 1 Credit™", "reports_to": ["pars"]},
            {"machine_name": "moc_abim", "label": "ABIM MOC points", "reports_to": ["pars"]},
            {"machine_name": "acpe", "label": "ACPE pharmacy CPE", "reports_to": ["cpe_monitor"]},
            {"machine_name": "ancc", "label": "ANCC nursing contact hours", "reports_to": ["ams"]},
            {"machine_name": "cme_other", "label": "Other CME (not reported)", "reports_to": []},
        ],
        "courses": DEMO_COURSES,
        "users": users,
        "enrollments": enrollments,
        "tokens": DEMO_TOKENS,
    }
