"""`RestwsClient`: EthosCE's restws web services (read-only), and `RestwsFacts`, the validation rules' facts.

- HTTP Basic on every request; the user name must start with "restws" (restws_basic_auth). 401 and 403 are
  sentences. Listings are paged `{self, first, last, prev?, next?, list}` (at most 100 items a page):
  `list_all` follows `next` until it is absent.
- Filters are exact matches (`nid=50`) or bracket operators (`id[gt]=120`, also ge, lt, le, ne).
- At most 4 requests in flight; answers are cached for the run except the holding table's rows
  (`transcript_import`), which change while an import runs.
"""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass

import httpx

from importconsole.lms.ethosce.diagnose import stored_key  # noqa: F401  (re-exported: a stored row's mapped columns)
from importconsole.lms.errors import LmsError, NotFound, ServerError
from importconsole.lms.models import JsonObject
from importconsole.lms.ethosce.errors import RestwsForbidden, RestwsRefused
from importconsole.lms.ethosce.session import check_site_url, unreachable
from importconsole.lms.transport import OwnsHttpClient, RetryPolicy, Secret, http_client

MAX_IN_FLIGHT = 4
PAGE_LIMIT = 100

Filters = Mapping[str, str | int]  # exact matches (`nid=50`) or bracket operators (`id[gt]=120`)
Query = tuple[tuple[str, str], ...]


def _query(filters: Filters | None) -> Query:
    """Filters as a stable, hashable query: `{"id[gt]": 5, "nid": 50}` -> (("id[gt]", "5"), ("nid", "50"))."""
    return tuple(sorted((k, str(v)) for k, v in (filters or {}).items()))


@dataclass(frozen=True)
class Listing:
    """A whole listing: every item, the pages read and how many pages the table had."""

    items: list[JsonObject]
    pages: int


class _BasicAuth(httpx.Auth):
    """Basic auth whose password never shows in a repr."""

    def __init__(self, username: str, password: Secret):
        self.username = username
        self._password = password

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = base64.b64encode(f"{self.username}:{self._password.reveal()}".encode()).decode()
        request.headers["Authorization"] = f"Basic {token}"
        yield request

    def __repr__(self) -> str:
        return f"<restws basic auth for {self.username}>"


class RestwsClient(OwnsHttpClient):
    """`async with RestwsClient(url, "restws_console", password) as ws: await ws.courses()`."""

    def __init__(self, base_url: str, username: str, password: str, *, ca_bundle: str | os.PathLike[str] | None = None,
                 timeout: float | httpx.Timeout = 30.0, transport: httpx.AsyncBaseTransport | None = None,
                 profile: str | None = None, max_in_flight: int = MAX_IN_FLIGHT, retry: RetryPolicy | None = None):
        self.site_url = check_site_url(base_url, secret="restws password")
        self.username = username
        self.profile = profile
        self.retry = retry or RetryPolicy(attempts=3)
        from importconsole import crash

        crash.register_secret(password)
        crash.register_secret(base64.b64encode(f"{username}:{password}".encode()).decode())
        self._http = http_client(self.site_url, ca_bundle=ca_bundle, timeout=timeout, transport=transport,
                                 headers={"Accept": "application/json"}, auth=_BasicAuth(username, Secret(password)))
        self._slots = asyncio.Semaphore(max_in_flight)
        self._cache: dict[tuple[str, Query, int], Listing] = {}
        self._inflight: dict[tuple[str, Query, int], asyncio.Future[Listing]] = {}
        self.requests = 0  # HTTP requests sent (tests and the bench count them)
        self.max_seen_in_flight = 0
        self._in_flight = 0

    def __repr__(self) -> str:
        return f"RestwsClient({str(self.site_url)!r}, user={self.username!r})"

    @property
    def host(self) -> str:
        return self.site_url.host

    def _hint(self) -> str:
        profile = f" --profile {self.profile}" if self.profile else ""
        return f"importconsole login{profile} or IMPORTCONSOLE_RESTWS_PASSWORD"

    def _error(self, resp: httpx.Response, action: str) -> LmsError:
        status = resp.status_code
        said = resp.text.strip()[:200] if resp.headers.get("Content-Type", "").startswith("text/plain") else ""
        if status == 401:
            return RestwsRefused(f"The site's web services (restws) at {self.host} refused {self.username!r} (401) while "
                                 f"trying to {action}: wrong password, or no such active user. Check restws_username "
                                 f"in the profile and the restws password ({self._hint()}).", status=status)
        if status == 403:
            why = (" Its name must start with \"restws\"." if not self.username.startswith("restws")
                   else " It needs the site's restws read permission for these resources (ask a site admin).")
            return RestwsForbidden(f"The site's web services (restws) at {self.host} do not let {self.username!r} "
                                   f"{action} (403).{why}", status=status)
        if status == 404:
            return NotFound(f"Not found on the site's web services while trying to {action}.", status=status)
        return ServerError(f"The site's web services answered HTTP {status} while trying to {action}"
                           + (f" ({said})" if said else "") + "; try again later.", status=status)

    async def get_json(self, path: str, action: str, params: Sequence[tuple[str, str]] | None = None) -> JsonObject:
        """One GET (at most `max_in_flight` at a time), retried on connection failures and 5xx."""
        last: LmsError | None = None
        for attempt in range(self.retry.attempts):
            async with self._slots:
                self._in_flight += 1
                self.max_seen_in_flight = max(self.max_seen_in_flight, self._in_flight)
                self.requests += 1
                try:
                    resp = await self._http.get(path.lstrip("/"), params=list(params or ()))
                except httpx.RequestError as exc:
                    resp, last, failure = None, unreachable(self.host, exc, action), exc
                finally:
                    self._in_flight -= 1
            if resp is not None:
                if resp.status_code == 200:
                    try:
                        data = resp.json()
                    except ValueError:
                        last = ServerError(f"The site's web services sent an answer that is not JSON while trying to {action}.")
                    else:
                        if isinstance(data, dict):
                            return data
                        last = ServerError(f"The site's web services sent an answer that is not a JSON object while trying to {action}.")
                elif resp.status_code < 500:
                    raise self._error(resp, action)
                else:
                    last = self._error(resp, action)
            if attempt + 1 < self.retry.attempts:
                await self.retry.wait(self.retry.backoff(attempt), failure if resp is None else None)
        assert last is not None
        raise last

    async def list_all(self, resource: str, filters: Filters | None = None, *, cache: bool = True,
                       limit: int = PAGE_LIMIT) -> Listing:
        """Every item of `GET /RESOURCE.json?filters`, following `next`. Cached for the run unless `cache=False`;
        the same listing asked twice at once is fetched once."""
        key = (resource, _query(filters), limit)
        if cache and key in self._cache:
            return self._cache[key]
        if cache and key in self._inflight:
            return await asyncio.shield(self._inflight[key])
        future: asyncio.Future[Listing] = asyncio.get_running_loop().create_future()
        if cache:
            self._inflight[key] = future
        try:
            listing = await self._fetch(resource, filters, limit)
            future.set_result(listing)
            if cache:
                self._cache[key] = listing
            return listing
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning when nobody else waited
            raise
        finally:
            self._inflight.pop(key, None)

    async def _fetch(self, resource: str, filters: Filters | None, limit: int) -> Listing:
        params = list(_query(filters)) + [("limit", str(limit))]
        first = await self.get_json(f"/{resource}.json", f"list {resource}", params)
        return Listing(await self.rest_of(resource, first), page_number(first.get("last"), 0) + 1)

    async def rest_of(self, resource: str, first: JsonObject) -> list[JsonObject]:
        """The items of a listing from its first page on: `first`'s items, then every page its `next` leads to."""
        action = f"list {resource}"
        items = list(first.get("list") or [])
        nxt, seen = first.get("next"), {page_number(first.get("self"), 0)}
        while nxt:
            path, query = self._relative(nxt)
            page_no = page_number(nxt, -1)
            if page_no in seen:  # a link back to a page already read would loop forever
                raise ServerError(f"The site's web services sent a `next` link back to page {page_no} while trying to {action}.")
            seen.add(page_no)
            page = await self.get_json(path, action, query)
            items += page.get("list") or []
            nxt = page.get("next")
        return items

    def _relative(self, link: str) -> tuple[str, list[tuple[str, str]]]:
        """A `next` link as (path on this site, query): the link is absolute, but only its path and query are
        used, so the credentials never go to another host."""
        url = httpx.URL(link)
        base = self.site_url.path
        path = url.path[len(base) - 1:] if url.path.startswith(base) else url.path
        return path, list(url.params.multi_items())

    async def first_page(self, resource: str, filters: Filters | None = None) -> JsonObject:
        """Page 0 of a listing (for its `last` link: how many pages a whole table has)."""
        return await self.get_json(f"/{resource}.json", f"list {resource}", list(_query(filters)) + [("limit", str(PAGE_LIMIT))])

    async def item(self, resource: str, item_id: int) -> JsonObject | None:
        try:
            return await self.get_json(f"/{resource}/{int(item_id)}.json", f"read {resource} {item_id}")
        except NotFound:
            return None

    # ---- readers ---------------------------------------------------------------------------------

    async def transcript_rows(self, after_id: int | None = None, **filters: str | int) -> list[JsonObject]:
        """Rows of the holding table (never cached), in id order; `after_id`: only rows with a greater id."""
        if after_id is not None:
            filters["id[gt]"] = int(after_id)
        return (await self.list_all("transcript_import", filters, cache=False)).items

    async def last_transcript_id(self) -> int:
        """The highest id in the holding table now (0 when empty): note it before an import starts."""
        page = await self.get_json("/transcript_import.json", "read the newest stored row",
                                   [("direction", "DESC"), ("limit", "1"), ("sort", "id")])
        rows = page.get("list") or []
        return int(rows[0]["id"]) if rows else 0

    async def courses(self, **filters: str | int) -> list[JsonObject]:
        return (await self.list_all("course", filters)).items

    async def course_credits(self, **filters: str | int) -> list[JsonObject]:
        return (await self.list_all("course_credit", filters)).items

    async def enrollments(self, **filters: str | int) -> list[JsonObject]:
        return (await self.list_all("course_enrollment", filters)).items

    async def users(self, **filters: str | int) -> list[JsonObject]:
        return (await self.list_all("user", filters)).items


def page_number(link: str | None, default: int) -> int:
    if not link:
        return default
    try:
        return int(httpx.URL(link).params.get("page", default))
    except ValueError:
        return default
