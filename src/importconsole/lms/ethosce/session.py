"""`DrupalSession`: one logged-in browser-like session on an EthosCE (Drupal 7) site.

Why it looks the way it does:
- One async httpx client and one cookie jar per run. The URL and TLS rules are the reference client's
  (`lms.transport`): TLS verification always on, an optional CA bundle, plain http:// only to this machine.
- Login is Drupal's own form (GET /user/login, scrape form_build_id, POST). A 302 means logged in; the form
  coming back means refused, and that is raised at once and never retried: Drupal's flood control locks the
  account after 5 failures. After one refusal the session refuses to POST a login again.
- An expired session (an admin page answering 403 "Access denied", a redirect to /user/login, or the login
  form in place of the page) logs in again once, quietly, and repeats the GET once.
- The password and the SESS cookie are never in a log line, a repr or an exception message.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from typing import IO

import httpx

from importconsole.lms import transport
from importconsole.lms.errors import CertificateInvalid, LmsError, NotFound, ServerError
from importconsole.lms.ethosce.errors import LoginRefused, SiteForbidden, UnexpectedPage
from importconsole.lms.ethosce.html import Form, Page
from importconsole.lms.transport import OwnsHttpClient, RetryPolicy, Secret, http_client

log = logging.getLogger(__name__)

Query = Mapping[str, str | int]
FormFiles = Mapping[str, tuple[str, IO[bytes], str]]  # field name: (file name, open file, content type)

# httpcore logs response headers at DEBUG, Set-Cookie included: the session cookie is hidden from any
# record of the HTTP libraries' loggers before a handler sees it.
_SESSION_COOKIE = re.compile(r"(S?SESS[0-9a-fA-F]+=)[^;'\"\s,)]+")


class _HideSessionCookie(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if "SESS" in text:
            record.msg, record.args = _SESSION_COOKIE.sub(r"\1[session cookie hidden]", text), ()
        return True


for _name in ("httpcore.http11", "httpcore.http2", "httpcore.connection", "httpx"):
    if not any(isinstance(f, _HideSessionCookie) for f in logging.getLogger(_name).filters):
        logging.getLogger(_name).addFilter(_HideSessionCookie())


def check_site_url(base_url: str, *, secret: str = "password") -> httpx.URL:
    """The site's root URL (path ending in /), or InsecureUrl with what to do. Same rule as the
    reference client: https, or plain http to this machine only."""
    url = transport.check_site_url(base_url, f"the {secret}", place="site", example="https://ethosce.example.org")
    path = url.path if url.path.endswith("/") else url.path + "/"
    return url.copy_with(path=path, query=None, fragment=None)


def unreachable(host: str, exc: BaseException, action: str) -> LmsError:
    """The reference client's sentence for a failed connection, naming the site."""
    return transport.unreachable(host, exc, action, place="site")


def location_path(resp: httpx.Response) -> str:
    """The path and query of a redirect's Location (Drupal sends absolute URLs)."""
    loc = httpx.URL(resp.headers.get("Location", ""))
    return loc.raw_path.decode("ascii", "replace")


class DrupalSession(OwnsHttpClient):
    """`async with DrupalSession(url, "admin", password) as site: await site.login()`.

    `get_page(path)` returns a parsed `Page` of an admin page (logging in again once if the session expired);
    `submit(path, form, fields, files=)` POSTs a scraped form. `login_posts` counts the login POSTs sent.
    """

    def __init__(self, base_url: str, username: str, password: str, *, ca_bundle: str | os.PathLike[str] | None = None,
                 timeout: float | httpx.Timeout = 60.0, transport: httpx.AsyncBaseTransport | None = None,
                 profile: str | None = None, retry: RetryPolicy | None = None):
        self.site_url = check_site_url(base_url)
        self.base_url = str(self.site_url)
        self.username = username
        self.profile = profile
        self.retry = retry or RetryPolicy(attempts=3)
        self._password = Secret(password)
        from importconsole import crash

        crash.register_secret(password)
        self._http = http_client(self.site_url, ca_bundle=ca_bundle, timeout=timeout, transport=transport)
        self.logged_in = False
        self.login_posts = 0  # login POSTs sent in this run (the tests hold it to 1 on a wrong password)
        self.relogins = 0  # quiet logins after an expired session
        self._refused: LoginRefused | None = None

    def __repr__(self) -> str:
        return f"DrupalSession({self.base_url!r}, user={self.username!r})"

    @property
    def host(self) -> str:
        return self.site_url.host

    def _login_hint(self) -> str:
        profile = f" --profile {self.profile}" if self.profile else ""
        return f"importconsole login{profile}"

    def url(self, path: str) -> str:
        """An absolute URL on the site (for sentences: no secret is ever in one)."""
        return str(self._http.base_url.join(path.lstrip("/")))

    # ---- raw requests ------------------------------------------------------------------------

    async def request(self, method: str, path: str, action: str, *, retry: bool | None = None, params: Query | None = None,
                      data: Mapping[str, str] | None = None, files: FormFiles | None = None, content: bytes | None = None,
                      headers: Mapping[str, str] | None = None) -> httpx.Response:
        """One request, relative to the site root. Connection failures of GETs (and of `retry=True` requests)
        are retried with backoff; nothing else is. Raises a sentence error when the site cannot be reached."""
        retry = method == "GET" if retry is None else retry
        attempts = self.retry.attempts if retry else 1
        last: LmsError | None = None
        for attempt in range(attempts):
            try:
                return await self._http.request(method, path.lstrip("/"), params=params, data=data, files=files,
                                                content=content, headers=headers)
            except httpx.RequestError as exc:
                last = unreachable(self.host, exc, action)
                if isinstance(last, CertificateInvalid) or attempt + 1 >= attempts:
                    raise last from None
                await self.retry.wait(self.retry.backoff(attempt), exc)
        assert last is not None
        raise last

    # ---- login -------------------------------------------------------------------------------

    async def login(self) -> None:
        """Logs in with Drupal's form. Raises `LoginRefused` at once when the form comes back; never retries."""
        if self._refused is not None:
            raise self._refused  # one refusal per run: a second POST would feed Drupal's flood control
        self._http.cookies.clear()
        self.logged_in = False
        resp = await self.request("GET", "/user/login", "open the login page")
        page = Page(resp.text, status=resp.status_code, url="/user/login")
        form = page.form("user_login")
        if resp.status_code != 200 or form is None:
            raise UnexpectedPage(f"The site at {self.host} has no Drupal login form at {self.url('/user/login')} "
                                 f"(HTTP {resp.status_code}); check base_url in the profile.", status=resp.status_code)
        fields = {**form.hidden, "name": self.username, "pass": self._password.reveal(), "op": form.button_label or "Log in"}
        self.login_posts += 1
        resp = await self.request("POST", "/user/login", "log in", retry=False, data=fields)
        if resp.status_code in (301, 302, 303) and "/user/login" not in location_path(resp):
            self.logged_in = True
            from importconsole import crash

            for name, value in self._http.cookies.items():
                if name.startswith(("SESS", "SSESS")):
                    crash.register_secret(value)  # the session cookie is a password while it lives
            log.debug("logged in to %s as %s", self.host, self.username)
            return
        said = "; ".join(text for kind, text in Page(resp.text).messages() if kind == "error") if resp.status_code == 200 else ""
        self._refused = LoginRefused(
            f"The site at {self.host} refused the login of {self.username!r}"
            + (f" (it said: {said})" if said else f" (HTTP {resp.status_code})")
            + ". Not retried: Drupal blocks an account after 5 failed logins. "
            f"Check the user name in the profile and the password ({self._login_hint()} or IMPORTCONSOLE_PASSWORD).",
            status=resp.status_code)
        raise self._refused

    # ---- pages and forms ---------------------------------------------------------------------

    @staticmethod
    def _expired(resp: httpx.Response, page: Page | None) -> bool:
        if resp.status_code == 403:
            return True
        if resp.status_code in (301, 302, 303) and "/user/login" in location_path(resp):
            return True
        return page is not None and page.form("user_login") is not None

    async def get_page(self, path: str, action: str, *, params: Query | None = None) -> Page:
        """GETs an admin page as the logged-in admin; logs in again once, quietly, if the session expired."""
        if not self.logged_in:
            await self.login()
        for again in (False, True):
            resp = await self.request("GET", path, action, params=params)
            page = Page(resp.text, status=resp.status_code, url=path) if resp.status_code in (200, 403) else None
            if not self._expired(resp, page):
                break
            if again:
                raise SiteForbidden(f"The site at {self.host} denies {self.username!r} access to {self.url(path)} even "
                                    f"after logging in again, so the console cannot {action}. The account needs the "
                                    "Feeds permissions to import and unlock (ask a site admin).", status=resp.status_code)
            log.debug("session expired on %s; logging in again", path)
            await self.relogin()
        if resp.status_code == 404:
            raise NotFound(f"The site at {self.host} has no page {self.url(path)} (404), so the console cannot {action}.",
                           status=404)
        if resp.status_code != 200 or page is None:
            raise ServerError(f"The site at {self.host} answered HTTP {resp.status_code} to {self.url(path)} while trying "
                              f"to {action}; try again later.", status=resp.status_code)
        return page

    async def relogin(self) -> None:
        """Logs in again after an expired session (quietly; a refusal still raises `LoginRefused`)."""
        self.relogins += 1
        await self.login()

    def lost_session(self, resp: httpx.Response) -> bool:
        """A form POST answered as to an anonymous visitor: the session expired (nothing was done)."""
        return self._expired(resp, None)

    async def submit(self, path: str, form: Form, fields: Mapping[str, str], action: str, *,
                     files: FormFiles | None = None) -> httpx.Response:
        """POSTs a form scraped from a page: its hidden fields (form_build_id, form_token, form_id) plus
        `fields`. Not retried, not redirected: the caller reads the answer."""
        data = {**form.hidden, **fields}
        return await self.request("POST", path, action, retry=False, data=data, files=files)
