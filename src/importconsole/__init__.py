"""importconsole: operate course record imports on a continuing-education LMS."""

__version__ = "0.1.0"
