"""The core (file rules, LMS client, workflows) stays free of Textual and of the reference server,
so the CLI and the TUI share it."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "importconsole"
CORE = ["importfile", "lms", "operations", "config.py", "secrets.py", "journal.py", "private_files.py"]
FORBIDDEN = {
    "importfile": ("textual", "httpx", "importconsole.sandbox", "importconsole.tui", "importconsole.lms"),
    "*": ("textual", "importconsole.sandbox", "importconsole.tui", "importconsole.cli"),
}


def _imports(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module


def test_core_never_imports_the_ui_or_the_sandbox():
    offenders = []
    for part in CORE:
        target = PACKAGE / part
        files = [target] if target.suffix == ".py" else sorted(target.rglob("*.py"))
        forbidden = FORBIDDEN.get(part, ()) + FORBIDDEN["*"]
        for file in files:
            if not file.exists():
                continue
            for lineno, name in _imports(file):
                if any(name == f or name.startswith(f + ".") for f in forbidden):
                    offenders.append(f"{file.relative_to(PACKAGE)}:{lineno} imports {name}")
    assert offenders == []
