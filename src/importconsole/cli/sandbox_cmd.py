"""`importconsole sandbox`: the reference LMS (docs/sandbox.md)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path


def _rate(text: str) -> float:
    if text.lower() in ("max", "0"):
        return 0.0
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of rows per second (or 'max')") from None
    if math.isnan(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of rows per second (or 'max')")
    if value < 0:
        raise argparse.ArgumentTypeError("rows per second cannot be negative")
    return 0.0 if math.isinf(value) else value  # infinitely fast is unthrottled


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError("the port must be 0-65535 (0 picks a free one)")
    return value


def _bytes(text: str) -> int:
    """'256M', '1G', '500K' or a number of bytes."""
    scale = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}.get(text.strip()[-1:].lower(), 1)
    digits = text.strip()[:-1] if scale > 1 else text.strip()
    if not (digits.isascii() and digits.isdigit()) or int(digits) == 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size (bytes, or a number with K, M or G, such as 256M)")
    return int(digits) * scale


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "sandbox",
        help="run the reference LMS (demo data, real database) on this machine",
        description="Run the reference LMS: the import API of docs/api.md over a real SQLite database, "
        "reproducing the importer's traps (docs/sandbox.md).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=_port, default=8765, help="port (default 8765; 0 picks a free port)")
    parser.add_argument("--db", type=Path, metavar="PATH",
                        help="SQLite database (default: a fresh temporary file); an existing one is reused as it is")
    parser.add_argument("--seed", default=None, metavar="demo|PATH",
                        help="dataset for a new database: 'demo' (default) or a JSON/TOML file (docs/dataset.md)")
    parser.add_argument("--rows-per-second", type=_rate, default=10.0, metavar="N",
                        help="processing speed (default 10; 0 or 'max' = unthrottled)")
    parser.add_argument("--max-upload", type=_bytes, default=256 << 20, metavar="SIZE",
                        help="largest import file accepted (default 256M; K, M, G or bytes); larger ones get 413")
    parser.add_argument("--faults", action="store_true", help="enable the test-only fault switch (POST /api/v1/_faults)")
    parser.set_defaults(func=run)


def run(args) -> int:
    from importconsole.sandbox.server import serve

    if args.host not in ("127.0.0.1", "localhost", "::1"):
        from importconsole.cli.common import err

        err(f"importconsole sandbox: listening on {args.host}, not only on this machine; the demo tokens are public.")
    seed = args.seed
    show_tokens = seed in (None, "demo")
    return serve(host=args.host, port=args.port, db_path=args.db, seed_name=seed,
                 rows_per_second=args.rows_per_second or None, faults=args.faults, show_tokens=show_tokens,
                 max_upload=args.max_upload)
