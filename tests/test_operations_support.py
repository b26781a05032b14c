"""Moved to tests/helpers/ (workflows, profiles, sandbox, wait). Kept only so that test files written on the
branches of this push still import; delete it once they are merged and import from helpers directly."""

from helpers.profiles import cli_env  # noqa: F401
from helpers.sandbox import SandboxServer, dataset, start_sandbox  # noqa: F401
from helpers.wait import until  # noqa: F401
from helpers.workflows import client_for, count, course_file, learners, start_on_same_port, submit  # noqa: F401
