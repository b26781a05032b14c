"""EthosCE (Drupal 7 + Feeds + restws) backend pieces: httpx and the standard library's HTML parser only.

- `session.DrupalSession`: one logged-in admin session (Drupal's login form, cookie jar, quiet re-login once).
- `feeds.FeedsSite`: the Feeds admin pages: importers, status, upload, batch driving, unlock.
- `restws.RestwsClient`: the read-only web services (HTTP Basic, paged listings, cached, 4 in flight).
- `facts.RestwsFacts`: the validation rules' `LmsFacts` from restws.
- `diagnose`: pure: the file's rows against the stored rows (multiset), the first unstored row, the cause.
- `errors`: the sentence errors (subclasses of `lms.errors`).

The protocol is in ../shared/drupal-feeds/README.md and docs/ethosce.md.
"""

from importconsole.lms.ethosce.diagnose import FeedFile, FeedsDiagnosis, diagnose_feed, read_feed_file, rows_at_percent, stored_key
from importconsole.lms.ethosce.errors import (
    BatchInterrupted,
    BatchNotOurs,
    ImportDied,
    LoginRefused,
    RestwsForbidden,
    RestwsRefused,
    SiteForbidden,
    UnexpectedPage,
    UnlockRefused,
    UploadRefused,
)
from importconsole.lms.ethosce.facts import RestwsFacts, RestwsLookups
from importconsole.lms.ethosce.feeds import (
    BatchOutcome,
    FeedsSite,
    ImporterInfo,
    ImporterStatus,
    UnlockOutcome,
    UploadResult,
    parse_status,
)
from importconsole.lms.ethosce.restws import RestwsClient
from importconsole.lms.ethosce.session import DrupalSession, check_site_url

__all__ = [
    "BatchInterrupted", "BatchNotOurs", "BatchOutcome", "DrupalSession", "FeedsSite", "ImportDied", "ImporterInfo", "ImporterStatus",
    "LoginRefused", "RestwsClient", "RestwsFacts", "RestwsForbidden", "RestwsLookups", "RestwsRefused",
    "SiteForbidden", "UnexpectedPage", "UnlockOutcome", "UnlockRefused", "UploadRefused", "UploadResult",
    "check_site_url", "parse_status", "stored_key", "FeedFile", "FeedsDiagnosis", "diagnose_feed", "read_feed_file",
    "rows_at_percent",
]
