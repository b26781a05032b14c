"""The suite-wide token scan (conftest.py) really fails a test whose output, DEBUG-level library
logs or written files carry a token, and passes one that carries none. The inner run executes the
real conftest.py and uses a token made at run time, so no file of this suite holds it whole."""

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

HERE = Path(__file__).resolve().parent
PARTS = ["inner", "scan", "token", "5c1e"]
INNER_TOKEN = "-".join(PARTS)

INNER_TESTS = '''
import logging

def test_leaks_in_httpcore_debug():
    logging.getLogger("httpcore.http11").debug(f"send_request_headers headers=[(b'Authorization', b'Bearer {TOKEN}')]")

def test_clean():
    logging.getLogger("httpcore.http11").debug("send_request_headers.started")
    print("nothing secret here")

def test_prints():
    print("token:", TOKEN)

def test_writes(tmp_path):
    (tmp_path / "journal.jsonl").write_text(TOKEN)
'''


@pytest.mark.slow
def test_the_scan_catches_debug_logs_output_and_files(pytester):
    pytester.makeconftest(
        f"import sys\nsys.path.insert(0, {str(HERE)!r})\n"
        f"exec(compile(open({str(HERE / 'conftest.py')!r}).read(), 'conftest.py', 'exec'))\n"
        f"_sandbox_helpers.ISSUED_TOKENS.add('-'.join({PARTS!r}))\n"
    )
    pytester.makepyfile(test_inner=f"TOKEN = '-'.join({PARTS!r})\n" + INNER_TESTS)
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    out = result.stdout.str()
    assert result.ret != 0
    result.assert_outcomes(passed=2, failed=2)
    assert "FAILED test_inner.py::test_leaks_in_httpcore_debug" in out and "FAILED test_inner.py::test_prints" in out
    result.stdout.fnmatch_lines(["*an API token was written to: test_writes0/journal.jsonl*"])
    result.stdout.fnmatch_lines(["*an API token reached the captured output or logs*"])
    assert "token: [token]" in out and INNER_TOKEN not in out  # the failure report does not repeat it
