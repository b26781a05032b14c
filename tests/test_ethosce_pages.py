"""Reading Feeds pages without depending on attribute order or closed tags, and the site URL rule (no server)."""

from __future__ import annotations

import pytest

from importconsole.lms.errors import InsecureUrl
from importconsole.lms.ethosce import check_site_url, parse_status
from importconsole.lms.ethosce.feeds import interval_seconds
from importconsole.lms.ethosce.html import Page

# A locked import page as another theme might print it: attributes in another order, single quotes,
# list items left unclosed, extra whitespace.
LOCKED = """<html><body><h1 id='page-title'> Course record import </h1>
<form method="post" action="/import/course_record_import" id="feeds-import-form" enctype="multipart/form-data">
<fieldset id="edit-source-status" class="form-wrapper"><div class='fieldset-wrapper'>
<div class="feeds-source-status info-box"><div class="item-list"><ul>
<li class="first">Importing - 41 % complete.
<li class="last">Next import: not scheduled.
</ul></div></div></div></fieldset>
<input name="form_build_id" type="hidden" value="form-abc" >
<input value="feeds_import_form" name="form_id" type="hidden">
<input class="form-submit form-button-disabled" value="Importing (41 %)" name="op" id="edit-submit" type="submit" disabled>
</form></body></html>"""


def test_locked_status_is_read_whatever_the_attribute_order():
    status = parse_status(Page(LOCKED), "course_record_import")
    assert (status.state, status.locked, status.percent, status.button_label) == ("importing", True, 41, "Importing (41 %)")
    assert status.title == "Course record import" and status.next_import == "not scheduled"
    assert status.lines == ("Importing - 41 % complete.", "Next import: not scheduled.")


def test_queued_at_zero_percent_has_no_status_line_but_the_button_says_it():
    html = LOCKED.replace("<li class=\"first\">Importing - 41 % complete.\n", "").replace("41 %)", "0 %)").replace(
        "</ul></div></div>", "</ul></div></div>Run cron to continue the import.")
    status = parse_status(Page(html), "course_record_import")
    assert status.state == "queued" and status.percent == 0 and status.queued_for_cron


def test_site_address_rules_are_the_reference_clients():
    assert str(check_site_url("http://127.0.0.1:8717")) == "http://127.0.0.1:8717/"
    assert str(check_site_url("https://ce.example.org/sub")) == "https://ce.example.org/sub/"
    with pytest.raises(InsecureUrl, match="Refusing plain http:// to ce.example.org: the password would cross"):
        check_site_url("http://ce.example.org")
    with pytest.raises(InsecureUrl, match="Put no user name or password in the site address"):
        check_site_url("https://admin:secret@ce.example.org")


def test_drupal_intervals_read_as_seconds():
    assert [interval_seconds(t) for t in ("0 sec", "1 min 5 sec", "2 hours 1 min", "1 day", "soon")] == [0, 65, 7260, 86400, None]


def test_without_php_the_kit_tests_skip_with_a_sentence_but_fail_in_ci(monkeypatch):
    from helpers import feeds_kit

    monkeypatch.setattr(feeds_kit.shutil, "which", lambda name: None)
    monkeypatch.delenv("CI", raising=False)
    assert "PHP 8.2 with sqlite3, xml, mbstring and gd is missing" in feeds_kit.kit_unavailable_reason()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="in CI they must run"):
        feeds_kit.kit_unavailable_reason()
    monkeypatch.setattr(feeds_kit, "KIT_DIR", feeds_kit.REPO_ROOT / "no-such-kit")
    assert "the Drupal + Feeds kit is not at" in feeds_kit.kit_unavailable_reason()


def test_references_read_as_the_kit_prints_them_or_as_real_restws_does():
    from importconsole.lms.ethosce.facts import ref_id

    assert ref_id(50) == 50 and ref_id("50") == 50
    assert ref_id({"uri": "https://ce.example.org/node/50", "id": 50, "resource": "node"}) == 50


def test_deleting_items_is_its_own_state():
    html = LOCKED.replace("Importing - 41 % complete.", "Deleting items - 30 % complete.").replace(
        ' disabled>', '>').replace("Importing (41 %)", "Import")
    status = parse_status(Page(html), "course_record_import")
    assert (status.state, status.deleting_percent, status.locked) == ("deleting", 30, False)
    assert status.describe() == "deleting items (30 %)"
