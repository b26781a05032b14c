"""What the console is connected to. The token lives only in memory here: it is never shown,
logged, or part of a repr (a crash report could print it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class LmsSession:
    profile: str
    base_url: str
    token: str = field(repr=False)
    ca_bundle: str | None = None
    journal_path: Path | None = None
    hung_after: float | None = None  # the profile's threshold (seconds without progress)

    def __repr__(self) -> str:
        return f"LmsSession(profile={self.profile!r}, base_url={self.base_url!r}, token=<hidden>)"

    def client(self):
        """A new LmsClient for this session (use with `async with`)."""
        from importconsole.lms.client import LmsClient

        return LmsClient(self.base_url, self.token, ca_bundle=self.ca_bundle)
