"""Test helpers: the reference LMS (sandbox), the Drupal + Feeds kit (feeds_kit), Pilot screens (tui)."""
