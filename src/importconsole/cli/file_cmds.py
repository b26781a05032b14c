"""Subcommands of this area (filled in by its issue)."""


def register(subparsers) -> None:
    return None
