"""The core (file rules, LMS client, workflows) stays free of Textual and of the reference server, and the
layers point down, so the CLI and the TUI share it. The contracts are in pyproject.toml ([tool.importlinter]);
`make lint` runs them too, this keeps `make test` guarding them."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_import_layer_contracts_are_kept():
    lint_imports = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint_imports), "--no-cache", str(ROOT / "pyproject.toml")],
                          cwd=ROOT, capture_output=True, text=True, timeout=110)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout
