"""What the console is connected to. Secrets (the token, an EthosCE profile's passwords) live only
in memory here: never shown, logged, or part of a repr (a crash report could print it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from importconsole.config import Profile
    from importconsole.secrets import Credentials


@dataclass
class LmsSession:
    profile: str
    base_url: str
    token: str = field(default="", repr=False)
    ca_bundle: str | None = None
    journal_path: Path | None = None
    hung_after: float | None = None  # the profile's threshold (seconds without progress)
    # The config profile (its kind says which backend) and its credentials; a session made from
    # a name, an address and a token alone is the console's own API.
    profile_config: Profile | None = field(default=None, repr=False)
    credentials: Credentials | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        from importconsole import crash

        held = self.credentials
        for secret in (self.token, held.password if held else None, held.restws_password if held else None):
            crash.register_secret(secret)  # no crash text or log line shows what this session holds

    def __repr__(self) -> str:
        return f"LmsSession(profile={self.profile!r}, base_url={self.base_url!r}, kind={self.kind!r}, secrets=<hidden>)"

    @property
    def kind(self) -> str:
        return self.profile_config.kind if self.profile_config is not None else "reference"

    def client(self):
        """A new backend for this session, not yet connected (use with `async with`); built by
        lms.connect, the one place that turns a profile into a backend."""
        from importconsole.config import Profile
        from importconsole.lms.connect import open_backend
        from importconsole.secrets import Credentials

        profile = self.profile_config or Profile(name=self.profile, base_url=self.base_url, username="",
                                                 ca_bundle=self.ca_bundle)
        return open_backend(profile, self.credentials or Credentials(token=self.token))
