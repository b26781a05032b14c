"""The API of docs/api.md as OpenAPI 3.1: served at /api/v1/openapi.json and committed as docs/openapi.json.

Regenerate the committed copy with `python -m importconsole.sandbox.openapi > docs/openapi.json`
(a test checks that the two match).
"""

from __future__ import annotations

import json

NULLABLE_STR = {"type": ["string", "null"]}
NULLABLE_INT = {"type": ["integer", "null"]}
TIME = {"type": "string", "description": "ISO 8601 UTC with Z"}
NULLABLE_TIME = {"type": ["string", "null"], "description": "ISO 8601 UTC with Z"}
ENTITY = {"type": "string", "enum": ["pars", "cpe_monitor", "ams"]}
IMPORTER = {"type": "string", "enum": ["course", "global"]}
STATE = {"type": "string", "enum": ["queued", "running", "completed", "completed_with_errors", "failed", "unlocked"]}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(props: dict, required: list[str] | None = None, *, extra: bool = True) -> dict:
    schema = {"type": "object", "properties": props, "required": required if required is not None else list(props)}
    if not extra:
        schema["additionalProperties"] = False
    return schema


def _list_of(name: str) -> dict:
    return _obj({"items": {"type": "array", "items": _ref(name)}, "next_offset": NULLABLE_INT})


SCHEMAS = {
    "Error": _obj({"error": {"type": "string"}, "message": {"type": "string"}}),
    "Me": _obj({"username": {"type": "string"}, "role": {"type": "string", "enum": ["site_admin", "course_admin"]},
                "display_name": {"type": "string"}}),
    "CreditType": _obj({"machine_name": {"type": "string"}, "label": {"type": "string"},
                        "reports_to": {"type": "array", "items": ENTITY}}),
    "CourseCredit": _obj({"credit_type": {"type": "string"}, "min": {"type": "number"}, "max": {"type": "number"},
                          "increments": {"type": "number"}, "enable_variable_credit": {"type": "boolean"}}),
    "Course": _obj({"id": {"type": "integer"}, "external_id": {"type": "string"}, "title": {"type": "string"},
                    "has_certificate": {"type": "boolean"}, "required_objects": {"type": "integer"},
                    "is_shell": {"type": "boolean"}, "credits": {"type": "array", "items": _ref("CourseCredit")}}),
    "User": _obj({"id": {"type": "integer"}, "external_user_id": NULLABLE_STR, "email": NULLABLE_STR,
                  "first_name": {"type": "string"}, "last_name": {"type": "string"}}),
    "CreditRecord": _obj({"id": {"type": "integer"}, "enrollment_id": {"type": "integer"}, "user_id": {"type": "integer"},
                          "course_id": {"type": "integer"}, "credit_type": {"type": "string"}, "amount": {"type": "number"},
                          "source": {"type": "string", "enum": ["import", "awarded"]},
                          "importer": {"type": ["string", "null"], "enum": ["course", "global", None]},
                          "import_id": NULLABLE_INT, "created_at": TIME,
                          # Only in GET /credit-records (additive): who and which course.
                          "course_external_id": {"type": "string"}, "external_user_id": NULLABLE_STR,
                          "email": NULLABLE_STR},
                         ["id", "enrollment_id", "user_id", "course_id", "credit_type", "amount", "source",
                          "importer", "import_id", "created_at"]),
    "Enrollment": _obj({"id": {"type": "integer"}, "user_id": {"type": "integer"}, "course_id": {"type": "integer"},
                        "course_external_id": {"type": "string"}, "external_user_id": NULLABLE_STR, "email": NULLABLE_STR,
                        "status": {"type": "string", "enum": ["incomplete", "complete"]}, "date_completed": NULLABLE_STR,
                        "enrollment_start": NULLABLE_STR,
                        "importer": {"type": ["string", "null"], "enum": ["course", "global", None]},
                        "import_id": NULLABLE_INT, "credits": {"type": "array", "items": _ref("CreditRecord")}}),
    "Import": _obj({"id": {"type": "integer"}, "importer": IMPORTER, "course_external_id": NULLABLE_STR,
                    "file_name": {"type": "string"}, "file_sha256": {"type": "string"}, "file_size": {"type": "integer"},
                    "idempotency_key": NULLABLE_STR, "state": STATE, "rows_total": {"type": "integer"},
                    "rows_processed": {"type": "integer"}, "rows_failed": {"type": "integer"},
                    "rows_held": {"type": "integer"}, "created_by": {"type": "string"}, "created_at": TIME,
                    "started_at": NULLABLE_TIME, "last_progress_at": NULLABLE_TIME, "finished_at": NULLABLE_TIME,
                    "error": NULLABLE_STR}),
    "RowResult": _obj({"row": {"type": "integer"}, "line": {"type": "integer"},
                       "status": {"type": "string", "enum": ["imported", "held", "refused", "failed"]},
                       "message": NULLABLE_STR, "enrollment_id": NULLABLE_INT}),
    "Lock": _obj({"importer": IMPORTER, "locked": {"type": "boolean"}, "import_id": NULLABLE_INT,
                  "held_by": NULLABLE_STR, "since": NULLABLE_TIME}),
    "QueueEntry": _obj({"id": {"type": "integer"}, "entity": ENTITY, "credit_record_id": {"type": "integer"},
                        "user_id": {"type": "integer"}, "course_id": {"type": "integer"}, "credit_type": {"type": "string"},
                        "amount": {"type": "number"}, "queued_at": TIME}),
    "ParsRecord": _obj({"user_id": {"type": "integer"}, "external_user_id": NULLABLE_STR, "email": NULLABLE_STR,
                        "course_external_id": {"type": "string"}, "credit_type": {"type": "string"},
                        "amount": {"type": "number"}, "participant_category": NULLABLE_STR,
                        "enrollment_start": NULLABLE_STR, "date_completed": NULLABLE_STR}),
    # server_time (additive): the server's clock when the list was read, for stall ages.
    "ImportList": {**_list_of("Import"), "properties": {**_list_of("Import")["properties"], "server_time": TIME}},
    "RowResultList": _list_of("RowResult"),
    "CourseList": _list_of("Course"),
    "CreditRecordList": _list_of("CreditRecord"),
    "QueueEntryList": _list_of("QueueEntry"),
}

ERROR_TEXT = {
    401: "no or unknown token (`unauthorized`)",
    403: "the role may not (`forbidden`, with `role_needed`)",
    404: "not found (`not_found`)",
    409: "`idempotency_in_flight`, or `lock_mismatch` with `lock`",
    413: "more than 1000 keys (`too_many_keys`)",
    422: "`invalid` (with `field`) or `idempotency_mismatch`",
    423: "the importer is locked (`importer_locked`, with `lock`)",
}


def _json_response(description: str, schema: dict) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict:
    return {str(c): _json_response(ERROR_TEXT[c], _ref("Error")) for c in codes}


def _op(summary: str, ok: dict, *errors: int, params=None, body=None, op_id: str, ok_code: int = 200, more=None) -> dict:
    op = {"operationId": op_id, "summary": summary, "responses": {str(ok_code): ok, **(more or {}), **_errors(401, *errors)}}
    if params:
        op["parameters"] = params
    if body:
        op["requestBody"] = body
    return op


def _q(name: str, schema: dict, description: str = "") -> dict:
    param = {"name": name, "in": "query", "required": False, "schema": schema}
    if description:
        param["description"] = description
    return param


def _path(name: str, schema: dict) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": schema}


PAGING = [_q("offset", {"type": "integer", "minimum": 0, "maximum": 2**62}), _q("limit", {"type": "integer", "minimum": 1, "maximum": 1000})]
ID = _path("id", {"type": "integer", "minimum": 1})
IMPORTER_PATH = _path("importer", IMPORTER)


def _json_body(schema: dict) -> dict:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


STR_LIST = {"type": "array", "items": {"type": "string"}, "maxItems": 1000}

PATHS = {
    "/me": {"get": _op("Who am I", _json_response("the signed-in account", _ref("Me")), op_id="me")},
    "/credit-types": {"get": _op("Credit types", _json_response("all credit types", _obj({"items": {
        "type": "array", "items": _ref("CreditType")}})), op_id="credit_types")},
    "/courses": {"get": _op("Courses", _json_response("courses", _ref("CourseList")), 422,
                            params=[_q("external_id", {"type": "string"}), *PAGING], op_id="list_courses")},
    "/courses/{id}": {"get": _op("One course", _json_response("the course", _ref("Course")), 404,
                                 params=[ID], op_id="get_course")},
    "/courses/lookup": {"post": _op(
        "Courses by external id", _json_response("found and missing", _obj({
            "items": {"type": "array", "items": _ref("Course")}, "missing": {"type": "array", "items": {"type": "string"}}})),
        413, 422, body=_json_body(_obj({"external_ids": STR_LIST})), op_id="lookup_courses")},
    "/users/lookup": {"post": _op(
        "Users by external id or email (emails case-insensitive)", _json_response("found and missing", _obj({
            "items": {"type": "array", "items": _ref("User")},
            "missing_external_user_ids": {"type": "array", "items": {"type": "string"}},
            "missing_emails": {"type": "array", "items": {"type": "string"}}})),
        413, 422, body=_json_body(_obj({"external_user_ids": STR_LIST, "emails": STR_LIST}, [])), op_id="lookup_users")},
    "/users": {"post": _op(
        "Create a user (site_admin); held rows for it are assigned (behaviour 3)",
        _json_response("the new user", {"allOf": [_ref("User"), _obj({"assigned_rows": {"type": "integer"}})]}),
        403, 422, ok_code=201, body=_json_body({**_obj({
            "external_user_id": {"type": "string", "minLength": 1}, "email": {"type": "string", "minLength": 1},
            "first_name": {"type": "string"}, "last_name": {"type": "string"}}, []),
            "anyOf": [{"required": ["external_user_id"]}, {"required": ["email"]}]}), op_id="create_user")},
    "/enrollments/lookup": {"post": _op(
        "Enrollments with their credit records (only those that exist)",
        _json_response("enrollments", _obj({"items": {"type": "array", "items": _ref("Enrollment")}})), 413, 422,
        body=_json_body(_obj({"keys": {"type": "array", "maxItems": 1000, "items": _obj({
            "external_user_id": {"type": "string"}, "email": {"type": "string"},
            "course_external_id": {"type": "string"}}, ["course_external_id"])}})), op_id="lookup_enrollments")},
    "/credit-records": {"get": _op(
        "Credit records", _json_response("credit records", _ref("CreditRecordList")), 422,
        params=[_q("course_external_id", {"type": "string"}), _q("source", {"type": "string", "enum": ["import", "awarded"]}),
                _q("complete", {"type": "string", "enum": ["true", "false"]}, "the enrollment's state"),
                _q("user_id", {"type": "integer", "minimum": 0, "maximum": 2**62}), *PAGING], op_id="credit_records")},
    "/reporting-queue": {"get": _op(
        "What was queued for external reporting", _json_response("queue entries", _ref("QueueEntryList")), 422,
        params=[_q("entity", ENTITY), _q("course_external_id", {"type": "string"}),
                _q("user_id", {"type": "integer", "minimum": 0, "maximum": 2**62}), *PAGING], op_id="reporting_queue")},
    "/reports/pars": {"get": _op(
        "The PARS report: course-level import records and awarded credit; global-importer records are left out",
        _json_response("PARS records", _obj({"items": {"type": "array", "items": _ref("ParsRecord")}})),
        params=[_q("course_external_id", {"type": "string"})], op_id="pars_report")},
    "/imports": {
        "get": _op("Imports, newest first", _json_response("imports", _ref("ImportList")), 422,
                   params=[_q("state", STATE), _q("idempotency_key", {"type": "string"}),
                           _q("file_sha256", {"type": "string"}), *PAGING], op_id="list_imports"),
        "post": _op(
            "Submit an import file", _json_response("a new import (queued, holding the importer's lock)", _ref("Import")),
            403, 404, 409, 422, 423, ok_code=201, op_id="submit_import",
            more={"200": _json_response("the SAME import: this Idempotency-Key and payload were seen before", _ref("Import")),
                  "400": _json_response("the Idempotency-Key is empty, over 200 characters, or not printable ASCII "
                                        "(`invalid_header`, with `field`)", _ref("Error")),
                  "413": _json_response("the file is over the server's upload limit (`importconsole sandbox "
                                        "--max-upload`, default 256 MiB): `file_too_large`, with `limit_bytes`; "
                                        "nothing was imported", _ref("Error"))},
            params=[{"name": "Idempotency-Key", "in": "header", "required": False,
                     "schema": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "^[ -~]+$"}}],
            body={"required": True, "content": {"multipart/form-data": {"schema": _obj({
                "file": {"type": "string", "format": "binary", "contentMediaType": "text/csv"},
                "importer": IMPORTER,
                "course": {"type": "string", "description": "the course's external id (required for importer=course)"},
            }, ["file", "importer"])}}}),
    },
    "/imports/{id}": {"get": _op("One import", _json_response("the import", _ref("Import")), 404,
                                 params=[ID], op_id="get_import")},
    "/imports/{id}/rows": {"get": _op(
        "Per-row results", _json_response("row results", _ref("RowResultList")), 404, 422,
        params=[ID, _q("status", {"type": "string", "enum": ["imported", "held", "refused", "failed"]}), *PAGING],
        op_id="import_rows")},
    "/imports/{id}/remaining": {"get": _op(
        "The header row plus the rows not yet processed, byte-for-byte as submitted",
        {"description": "CSV", "headers": {"X-First-Row": {"description": "the first row it holds",
                                                           "schema": {"type": "string"}}},
         "content": {"text/csv": {"schema": {"type": "string"}}}}, 404, params=[ID], op_id="import_remaining")},
    "/imports/{id}/file": {"get": _op(
        "The submitted file, as submitted", {"description": "the file",
                                             "content": {"application/octet-stream": {"schema": {"type": "string",
                                                                                                 "format": "binary"}}}},
        404, params=[ID], op_id="import_file")},
    "/events": {"get": _op(
        "Server-sent events: `import` (data: Import) and `lock` (data: Lock); `: keepalive` every 10 s",
        {"description": "an endless event stream", "content": {"text/event-stream": {"schema": {"type": "string"}}}},
        op_id="events")},
    "/locks": {"get": _op("Both importers' locks", _json_response("locks", _obj({"items": {
        "type": "array", "items": _ref("Lock")}})), op_id="locks")},
    "/locks/{importer}": {"get": _op("One importer's lock", _json_response("the lock", _ref("Lock")), 404,
                                     params=[IMPORTER_PATH], op_id="get_lock")},
    "/locks/{importer}/unlock": {"post": _op(
        "Compare-and-unlock (site_admin): ends the named import as unlocked and frees the importer",
        _json_response("unlocked", _obj({"lock": _ref("Lock"), "import": _ref("Import")})), 403, 404, 409, 422,
        params=[IMPORTER_PATH], body=_json_body(_obj({"import_id": {"type": "integer"}})), op_id="unlock")},
    "/openapi.json": {"get": {"operationId": "openapi", "summary": "This document", "security": [],
                              "responses": {"200": _json_response("OpenAPI 3.1", {"type": "object"})}}},
}


def openapi_document() -> dict:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "importconsole LMS import API",
            "version": "1.0.0",
            "description": "The import job, its lock and Unlock, which EthosCE does not publish. "
                           "Implemented by the reference LMS (`importconsole sandbox`); see docs/api.md.",
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "paths": PATHS,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": SCHEMAS,
        },
    }


if __name__ == "__main__":
    print(json.dumps(openapi_document(), indent=2, ensure_ascii=False))
