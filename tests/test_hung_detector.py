"""Hung = the importer is locked by an import whose rows_processed has not moved for hung_after
seconds. Pure logic, driven by a hand-moved clock."""

import pytest

from importconsole.importfile.diagnosis import (
    CAUSE_HEADER_WHITESPACE, CAUSE_SPECIAL_CHARACTERS, header_whitespace, is_special_character, special_characters,
)
from importconsole.operations.hung import HungDetector
from importconsole.operations.watch import RateWindow, format_duration


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock():
    return FakeClock()


def test_an_import_that_stops_while_holding_the_lock_is_hung_after_the_threshold(clock):
    detector = HungDetector(hung_after=30, clock=clock)
    detector.observe_lock("course", 7)
    detector.observe(7, 119, importer="course", rows_total=200)
    clock.advance(29.9)
    assert detector.hung(7) is None
    clock.advance(0.2)
    hung = detector.hung(7)
    assert hung is not None
    assert (hung.import_id, hung.importer, hung.rows_processed, hung.stopped_at_row) == (7, "course", 119, 120)
    assert hung.stalled_for == pytest.approx(30.1)
    assert [h.import_id for h in detector.check()] == [7]


def test_a_slow_import_that_still_moves_is_never_hung(clock):
    detector = HungDetector(hung_after=5, clock=clock)
    detector.observe_lock("course", 1)
    for rows in range(1, 40):
        detector.observe(1, rows)
        clock.advance(4.9)  # one row just under every threshold
        assert detector.hung(1) is None
    assert detector.check() == []


def test_hung_clears_when_progress_resumes(clock):
    detector = HungDetector(hung_after=2, clock=clock)
    detector.observe_lock("course", 3)
    detector.observe(3, 10)
    clock.advance(3)
    assert detector.hung(3) is not None
    detector.observe(3, 11)
    assert detector.hung(3) is None
    clock.advance(1.5)
    assert detector.hung(3) is None


def test_an_import_that_does_not_hold_the_lock_is_not_hung(clock):
    """Queued behind another, or the lock was freed: not moving is not hanging."""
    detector = HungDetector(hung_after=1, clock=clock)
    detector.observe(4, 0, state="queued")
    detector.observe_lock("course", 99)
    clock.advance(10)
    assert detector.hung(4) is None
    detector.observe_lock("course", None)
    assert detector.hung(4) is None
    detector.observe_lock("course", 4)
    assert detector.hung(4) is not None


def test_an_ended_import_is_forgotten(clock):
    detector = HungDetector(hung_after=1, clock=clock)
    detector.observe_lock("global", 5)
    detector.observe(5, 3)
    clock.advance(5)
    assert detector.hung(5) is not None
    detector.observe(5, 3, state="unlocked")
    assert detector.hung(5) is None and detector.check() == []


def test_detection_latency_is_at_most_threshold_plus_one_poll(clock):
    """Polled every 0.7 s, an import that stops at t=0 is reported by t = hung_after + 0.7."""
    hung_after, poll = 3.0, 0.7
    detector = HungDetector(hung_after=hung_after, clock=clock)
    detector.observe_lock("course", 8)
    start = clock.now
    detector.observe(8, 50)  # last progress, seen at once (event stream)
    while not detector.check():
        clock.advance(poll)
        detector.observe(8, 50)
    assert clock.now - start <= hung_after + poll


def test_the_threshold_must_be_positive():
    with pytest.raises(ValueError):
        HungDetector(hung_after=0)


def test_rate_and_eta_over_a_window(clock):
    window = RateWindow(window=10)
    assert window.rate(clock.now) is None
    for rows in range(0, 101, 10):  # 10 rows/s for 10 s
        window.add(clock.now, rows)
        clock.advance(1)
    clock.advance(-1)
    assert window.rate(clock.now) == pytest.approx(10.0)
    assert window.eta(clock.now, 50) == pytest.approx(5.0)
    # Stalled: the rate decays towards zero as the window slides, ETA becomes unknown.
    for _ in range(12):
        clock.advance(1)
        window.add(clock.now, 100)
    assert window.rate(clock.now) == pytest.approx(0.0, abs=1.0)
    assert window.eta(clock.now, 0) == 0.0


def test_special_characters_are_named_by_code_point_and_column():
    found = special_characters(["u1", "Ann\u200b", "Zoë Łukasz 王芳 O'Brien-Smith"], ["external_user_id", "first_name", "last_name"], row=120)
    assert [(c.row, c.column, c.code_point, c.position) for c in found] == [(120, "first_name", "U+200B", 3)]
    assert "ZERO WIDTH SPACE" in found[0].describe()
    for ch in ["\x00", "\x07", "\u00a0", "\u200c", "\u200d", "\ufeff", "\ufffd", "\u202e", "\ue000", "\x85"]:
        assert is_special_character(ch), repr(ch)
    for ch in ["\t", "é", "ł", "王", "'", "-", " "]:
        assert not is_special_character(ch), repr(ch)


def test_header_whitespace_is_described():
    assert header_whitespace(["external_user_id", "complete"]) == []
    problems = header_whitespace(["external_user_id ", "first  name", "last\u00a0name"])
    assert len(problems) == 3
    assert "'external_user_id '" in problems[0]
    assert CAUSE_HEADER_WHITESPACE != CAUSE_SPECIAL_CHARACTERS


def test_durations_read_like_a_person_wrote_them():
    assert [format_duration(s) for s in (0, 59.4, 61, 3725)] == ["0s", "59s", "1m01s", "1h02m"]


def test_a_clean_row_is_cause_unknown_never_a_guess(tmp_path):
    from importconsole.importfile.diagnosis import CAUSE_UNKNOWN, diagnose_file

    path = tmp_path / "clean.csv"
    path.write_bytes("external_user_id,first_name\r\nu1,Zoë\r\nu2,Łukasz\r\n".encode())
    diagnosis = diagnose_file(9, path, rows_processed=1, rows_total=2)
    assert diagnosis.cause == CAUSE_UNKNOWN and not diagnosis.known and diagnosis.characters == ()
    assert diagnosis.summary() == "cause unknown: row 2 holds no special characters and the header is clean"
    assert diagnosis.line == 3
    beyond = diagnose_file(9, path, rows_processed=2, rows_total=2)
    assert beyond.summary() == "cause unknown: the file has no row 3"
    binary = tmp_path / "book.csv"
    binary.write_bytes(b"PK\x03\x04" + bytes(100))
    unreadable = diagnose_file(9, binary, rows_processed=0)
    assert unreadable.cause == CAUSE_UNKNOWN and "could not be read" in unreadable.summary()


# -- seeded from the server's own clock (an import stuck before the console opened) -----------

def test_an_import_stuck_long_before_the_console_opened_is_hung_on_first_sight(clock):
    detector = HungDetector(hung_after=60, clock=clock)
    detector.observe_lock("course", 7)
    detector.observe(7, 4, importer="course", rows_total=10, moved_ago=9 * 3600)  # since last night
    hung = detector.hung(7)
    assert hung is not None and hung.stopped_at_row == 5
    assert hung.stalled_for == pytest.approx(9 * 3600)


def test_an_import_whose_last_progress_is_recent_is_not_hung_until_the_threshold(clock):
    detector = HungDetector(hung_after=2, clock=clock)
    detector.observe_lock("course", 7)
    detector.observe(7, 4, moved_ago=0.5)
    assert detector.hung(7) is None
    clock.advance(1.4)
    detector.observe(7, 4, moved_ago=1.9)  # a resync agrees: still not 2 s
    assert detector.hung(7) is None
    clock.advance(0.2)
    assert detector.hung(7).stalled_for == pytest.approx(2.1)


def test_a_slow_import_that_still_moves_is_never_hung_when_seeded(clock):
    detector = HungDetector(hung_after=5, clock=clock)
    detector.observe_lock("course", 1)
    for rows in range(1, 40):
        detector.observe(1, rows, moved_ago=0.3)  # every poll sees a new row, moved 0.3 s ago
        clock.advance(4.6)
        assert detector.hung(1) is None
    assert detector.check() == []


def test_a_change_is_never_dated_before_the_console_last_saw_the_old_value(clock):
    """A server age longer than our own observation allows (its clock stepped?) is not trusted."""
    detector = HungDetector(hung_after=2, clock=clock)
    detector.observe_lock("course", 1)
    detector.observe(1, 5)
    clock.advance(1)
    detector.observe(1, 6, moved_ago=500)  # we saw 5 one second ago: 6 is at most 1 s old
    assert detector.stalled_for(1) == pytest.approx(1)
    assert detector.hung(1) is None


def test_a_resync_only_moves_the_stall_start_earlier(clock):
    detector = HungDetector(hung_after=30, clock=clock)
    detector.observe_lock("course", 2)
    detector.observe(2, 5)  # first seen on the event stream: no server age
    clock.advance(1)
    detector.observe(2, 5, moved_ago=40)  # the resync's list says 40 s without a row
    assert detector.hung(2).stalled_for == pytest.approx(40)
    detector.observe(2, 5, moved_ago=0)  # a stale or odd sample never makes it younger
    assert detector.hung(2).stalled_for == pytest.approx(40)
    detector.observe(2, 6, moved_ago=0)  # but real progress clears it
    assert detector.hung(2) is None


def test_moved_ago_is_measured_on_the_servers_clock_only():
    from importconsole.operations.hung import moved_ago
    server = "2026-11-28T09:00:05.500Z"
    assert moved_ago(server_time=server, last_progress_at="2026-11-28T09:00:00.000Z",
                     started_at="2026-11-28T08:00:00.000Z", rows_processed=4) == pytest.approx(5.5)
    # Before the first row: since it started; queued (not started): unknown.
    assert moved_ago(server_time=server, last_progress_at=None, started_at="2026-11-28T09:00:04.000Z",
                     rows_processed=0) == pytest.approx(1.5)
    assert moved_ago(server_time=server, last_progress_at=None, started_at=None, rows_processed=0) is None
    # Rows processed but no stamp, no server time, or an unreadable one: unknown, never guessed.
    assert moved_ago(server_time=server, last_progress_at=None, started_at="2026-11-28T08:00:00Z",
                     rows_processed=3) is None
    assert moved_ago(server_time=None, last_progress_at="2026-11-28T09:00:00Z", started_at=None,
                     rows_processed=3) is None
    assert moved_ago(server_time="yesterday", last_progress_at="2026-11-28T09:00:00Z", started_at=None,
                     rows_processed=3) is None
    # A stamp after the server's "now" (read racing a row): 0, not negative.
    assert moved_ago(server_time=server, last_progress_at="2026-11-28T09:00:06Z", started_at=None,
                     rows_processed=3) == 0.0


@pytest.mark.parametrize("skew", [-3 * 365 * 86400.0, -3 * 3600.0, 0.0, 7 * 3600.0, 50 * 365 * 86400.0])
def test_the_consoles_wall_clock_being_wrong_changes_nothing(skew):
    """The watcher's clock is a deliberately wrong wall clock (years or hours off the server's):
    what is hung, and for how long, depends only on the server's stamps."""
    import time as _time

    from importconsole.lms.models import Import, Lock
    from importconsole.operations.watch import ImportWatcher

    base = _time.time() + skew
    local = FakeClock()
    local.now = base
    watcher = ImportWatcher(client=None, hung_after=2.0, clock=local)
    server_time = "2026-11-28T09:00:10.000Z"
    stuck = Import(id=1, importer="course", state="running", rows_total=10, rows_processed=4,
                   started_at="2026-11-28T08:59:00.000Z", last_progress_at="2026-11-28T09:00:05.000Z")
    moving = Import(id=2, importer="global", state="running", rows_total=10, rows_processed=7,
                    started_at="2026-11-28T08:59:00.000Z", last_progress_at="2026-11-28T09:00:09.200Z")
    watcher.apply_import(stuck, server_time=server_time)
    watcher.apply_import(moving, server_time=server_time)
    watcher.apply_lock(Lock("course", True, 1))
    watcher.apply_lock(Lock("global", True, 2))
    assert watcher.views[1].shown_state == "hung" and watcher.views[1].hung.stopped_at_row == 5
    assert watcher.views[1].hung.stalled_for == pytest.approx(5.0)
    assert watcher.views[2].hung is None  # last moved 0.8 s ago by the server's clock
    local.advance(1.1)
    watcher.tick()
    assert watcher.views[2].hung is None
    local.advance(0.2)
    watcher.tick()
    assert watcher.views[2].hung is not None  # 0.8 + 1.3 s without a row
    assert local.now - base == pytest.approx(1.3)


def test_without_server_time_the_stall_clock_starts_at_first_sight(clock):
    """An older LMS that sends no server_time: the console waits a full hung_after, as before."""
    from importconsole.lms.models import Import, Lock
    from importconsole.operations.watch import ImportWatcher

    watcher = ImportWatcher(client=None, hung_after=2.0, clock=clock)
    watcher.apply_import(Import(id=1, importer="course", state="running", rows_total=10, rows_processed=4,
                                last_progress_at="2020-01-01T00:00:00Z"))
    watcher.apply_lock(Lock("course", True, 1))
    assert watcher.views[1].hung is None
    clock.advance(2.1)
    watcher.tick()
    assert watcher.views[1].hung is not None


def test_header_spaces_are_not_named_as_the_cause_once_rows_after_the_header_were_processed(tmp_path):
    """The header hangs an import before row 1 (page: "additional spaces in the headers"); an
    import that processed rows got past it, so its stop is explained by the row or is unknown."""
    from importconsole.importfile.diagnosis import CAUSE_UNKNOWN, diagnose_file

    path = tmp_path / "spaced.csv"
    path.write_bytes("external_user_id ,first_name\r\nu1,Ana\r\nu2,Zo\u200be\r\nu3,Li\r\n".encode())
    at_start = diagnose_file(1, path, rows_processed=0, rows_total=3)
    assert at_start.cause == CAUSE_HEADER_WHITESPACE and at_start.row == 1
    at_row_2 = diagnose_file(1, path, rows_processed=1, rows_total=3)
    assert at_row_2.cause == CAUSE_SPECIAL_CHARACTERS
    assert [(c.row, c.code_point) for c in at_row_2.characters] == [(2, "U+200B")]
    at_row_3 = diagnose_file(1, path, rows_processed=2, rows_total=3)
    assert at_row_3.cause == CAUSE_UNKNOWN and not at_row_3.known
    assert at_row_3.summary() == ("cause unknown: row 3 holds no special characters; the header has extra spaces "
                                  "('external_user_id ' has leading or trailing spaces), but 2 rows after it were "
                                  "processed, so the header is not why it stopped")
