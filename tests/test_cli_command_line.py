"""One command line: --profile and --config go before or after every subcommand (issue 10, section 4)."""

import pytest

from importconsole.cli import build_parser

COMMANDS = [
    ["validate", "f.csv"], ["fix", "f.csv", "--out", "o.csv", "--sanitize"], ["submit", "f.csv"], ["imports"],
    ["journal"], ["login"], ["logout"], ["watch"], ["watch", "3"], ["diagnose", "3"], ["unlock", "3"],
    ["reimport", "3"], ["recover", "3"], ["credit-fix"], ["config", "validate"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c))
def test_profile_and_config_are_taken_before_and_after_every_subcommand(command):
    parser = build_parser()
    after = parser.parse_args([*command, "--profile", "prod", "--config", "/x.toml"])
    before = parser.parse_args(["--profile", "prod", "--config", "/x.toml", *command])
    assert (after.profile, after.config) == (before.profile, before.config) == ("prod", "/x.toml")
    # Given in both places, the one after the command wins (as for login and submit).
    both = parser.parse_args(["--profile", "a", *command, "--profile", "b"])
    assert both.profile == "b"
