"""A fake German news site on 127.0.0.1: pages, feeds, sitemaps and robots.txt, with faults on demand.

    with FakeSite() as site:
        site.add_page("/politik/radweg.html", article(3))            # a generated German article
        site.add_feed("/feed.xml", ["/politik/radweg.html"])           # RSS listing it (dates from the pages)
        site.route("/slow.html", delay=5)                              # faults: delay, drip, endless,
        site.route("/gone.html", status=410)                           # status (+ Retry-After), redirects,
        site.route("/loop", status=302, headers={"Location": "/loop"}) # content type
        ... site.hits("/feed.xml"), site.requests[-1].headers          # what the follower asked

Every text is generated here from word lists (no article text from anywhere else). Routes
answer conditional GETs: a route with an ETag answers 304 to a matching If-None-Match, and
one with a Last-Modified to an If-Modified-Since that is not older. Everything stops by
itself: daemon threads, and ``stop()`` ends endless and dripping bodies.
"""

from __future__ import annotations

import contextlib
import hashlib
import html
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self

TOWNS = ["Lübeck", "Görlitz", "Passau", "Emden", "Tübingen", "Cottbus", "Bamberg", "Husum", "Zwickau", "Lindau", "Wismar", "Jena"]
SUBJECTS = ["Der Stadtrat", "Die Feuerwehr", "Der Bürgermeister", "Die Polizei", "Der Sportverein", "Die Stadtbibliothek",
            "Das Klinikum", "Die Handwerkskammer", "Der Naturschutzbund", "Die Verkehrsbetriebe"]
ACTIONS = ["hat am Dienstag einen neuen Radweg vorgestellt", "will im Herbst mehr Personal einstellen",
           "plant eine Sanierung des alten Bahnhofs", "hat die Ergebnisse einer Umfrage veröffentlicht",
           "warnt vor Glätte auf den Landstraßen", "eröffnet am Wochenende ein neues Gebäude",
           "fordert mehr Geld vom Land", "hat einen Spendenrekord gemeldet"]
DETAILS = ["Die Kosten werden auf {n} Millionen Euro geschätzt.", "Nach Angaben der Stadt sind {n} Mitarbeiter beteiligt.",
           "Die Arbeiten sollen im {month} beginnen und etwa {n} Wochen dauern.",
           "Anwohner können sich bis zum {n}. {month} im Rathaus informieren.",
           "Im vergangenen Jahr waren es noch {n} Prozent weniger gewesen.",
           "Kritiker bemängeln, dass die Pläne zu spät kämen.", "Eine Sprecherin nannte den Schritt überfällig.",
           "Der Landkreis prüft nun ähnliche Vorhaben in {n} weiteren Gemeinden."]
MONTHS = ["Januar", "März", "April", "Mai", "Juni", "September", "Oktober", "November"]


@dataclass(frozen=True)
class Article:
    """A generated article: title, ISO date, paragraphs (German, made up)."""

    title: str
    date: str
    paragraphs: tuple[str, ...]


def article(n: int, *, date: str | None = None, version: int = 0) -> Article:
    """The ``n``-th generated article (deterministic); ``version`` > 0 changes its last paragraph."""
    town, subject, action = TOWNS[n % len(TOWNS)], SUBJECTS[n % len(SUBJECTS)], ACTIONS[(n // 3) % len(ACTIONS)]
    paragraphs = []
    for p in range(4):
        sentences = [f"{subject} von {town} {action}."] if p == 0 else []
        for s in range(3):
            k = n * 7 + p * 3 + s
            sentences.append(DETAILS[k % len(DETAILS)].format(n=(k % 40) + 2, month=MONTHS[k % len(MONTHS)]))
        paragraphs.append(" ".join(sentences))
    if version:
        paragraphs.append(f"Nachtrag {version}: {subject} hat die Angaben am Abend ergänzt; die Zahl der Beteiligten liegt bei {40 + version}.")
    day = date or f"2025-{(n % 12) + 1:02d}-{(n % 27) + 1:02d}"
    return Article(f"{subject} von {town}: Meldung {n}", day, tuple(paragraphs))


def page_html(item: Article, *, url: str | None = None) -> bytes:
    """A news page as sites write them: navigation, the article with its date, a footer."""
    body = "\n".join(f"<p>{html.escape(p)}</p>" for p in item.paragraphs)
    canonical = f'<link rel="canonical" href="{html.escape(url)}">' if url else ""
    return f"""<!DOCTYPE html>
<html lang="de"><head><meta charset="utf-8"><title>{html.escape(item.title)} | Testblatt</title>
<meta property="article:published_time" content="{item.date}T08:00:00+02:00">{canonical}</head>
<body><nav><a href="/">Start</a> <a href="/politik/">Politik</a> <a href="/sport/">Sport</a></nav>
<article><h1>{html.escape(item.title)}</h1><time datetime="{item.date}">{item.date}</time>
{body}
</article><footer>Testblatt – eine Zeitung, die es nicht gibt. Impressum · Datenschutz</footer></body></html>""".encode()


def rss(entries: Iterable[tuple[str, str, str | None]], *, title: str = "Testblatt") -> bytes:
    """RSS 2.0 with (link, title, date) items; the date as pubDate."""
    items = "".join(
        f"<item><title>{html.escape(t)}</title><link>{html.escape(link)}</link>"
        + (f"<pubDate>{format_datetime(datetime.fromisoformat(d).replace(tzinfo=UTC) if len(d) > 10 else datetime.fromisoformat(d + 'T08:00:00+00:00'))}</pubDate>" if d else "")
        + "</item>" for link, t, d in entries)
    return f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>{title}</title>{items}</channel></rss>'.encode()


def atom(entries: Iterable[tuple[str, str, str | None]], *, title: str = "Testblatt") -> bytes:
    items = "".join(f'<entry><title>{html.escape(t)}</title><link href="{html.escape(link)}"/><id>{html.escape(link)}</id>'
                    + (f"<updated>{d if len(d) > 10 else d + 'T08:00:00Z'}</updated>" if d else "") + "</entry>"
                    for link, t, d in entries)
    return f'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>{title}</title>{items}</feed>'.encode()


def sitemap(entries: Iterable[tuple[str, str | None]], *, news: bool = False) -> bytes:
    """A sitemap (or news sitemap) of (loc, lastmod) entries."""
    ns = ' xmlns:news="http://www.google.com/schemas/sitemap-news/0.9"' if news else ""
    urls = []
    for loc, date in entries:
        extra = (f"<news:news><news:publication><news:name>Testblatt</news:name><news:language>de</news:language>"
                 f"</news:publication><news:publication_date>{date}</news:publication_date><news:title>Meldung</news:title></news:news>"
                 if news and date else (f"<lastmod>{date}</lastmod>" if date else ""))
        urls.append(f"<url><loc>{html.escape(loc)}</loc>{extra}</url>")
    return (f'<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"{ns}>'
            + "".join(urls) + "</urlset>").encode()


def sitemap_index(locations: Iterable[str]) -> bytes:
    items = "".join(f"<sitemap><loc>{html.escape(loc)}</loc></sitemap>" for loc in locations)
    return f'<?xml version="1.0" encoding="UTF-8"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{items}</sitemapindex>'.encode()


@dataclass
class Route:
    """What one path answers. ``delay``: seconds before the headers; ``drip``: seconds between body
    bytes; ``endless``: a body that never ends (until the server stops)."""

    status: int = 200
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drip: float = 0.0
    endless: bool = False
    etag: str | None = None
    last_modified: str | None = None


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    at: float


class FakeSite:
    """The site; see the module docstring. ``url(path)`` is the absolute URL of a path."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 30

            def log_message(self, format: str, *args: object) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                # headers and body go out as two writes: without this, Nagle's algorithm and the
                # client's delayed ACK add 40 ms to every keep-alive response
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def do_GET(self) -> None:
                site._answer(self)

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.host = host
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    # -- life ------------------------------------------------------------------------------------------------
    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- content ---------------------------------------------------------------------------------------------
    def url(self, path: str, *, host: str | None = None) -> str:
        return f"http://{host or self.host}:{self.port}{path}"

    def route(self, path: str, **fields: object) -> Route:
        with self._lock:
            self.routes[path] = Route(**fields)  # type: ignore[arg-type]
            return self.routes[path]

    def add_page(self, path: str, item: Article, **fields: object) -> Route:
        body = page_html(item)
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        return self.route(path, body=body, etag=etag, **fields)

    def add_feed(self, path: str, paths: Iterable[str], *, items: dict[str, Article] | None = None, kind: str = "rss",
                 **fields: object) -> Route:
        """A feed (rss or atom) listing ``paths`` (absolute URLs used as given) with each page's title and date."""
        entries = []
        for p in paths:
            link = p if "://" in p else self.url(p)
            item = (items or {}).get(p)
            entries.append((link, item.title if item else p, item.date if item else None))
        body = rss(entries) if kind == "rss" else atom(entries)
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        content = "application/rss+xml" if kind == "rss" else "application/atom+xml"
        return self.route(path, body=body, content_type=content, etag=etag, **fields)

    def hits(self, path: str) -> int:
        with self._lock:
            return sum(r.path == path for r in self.requests)

    def paths_requested(self) -> list[str]:
        with self._lock:
            return [r.path for r in self.requests]

    # -- serving ---------------------------------------------------------------------------------------------
    def _answer(self, handler: BaseHTTPRequestHandler) -> None:
        headers = {k.lower(): v for k, v in handler.headers.items()}
        with self._lock:
            self.requests.append(Request(handler.path, headers, time.monotonic()))
            route = self.routes.get(handler.path.split("?", 1)[0])
        if route is None:
            route = Route(status=404, body=b"<html><body><p>Nicht gefunden</p></body></html>")
        if route.delay and self._stopping.wait(route.delay):
            return
        if route.status == 200 and self._not_modified(route, headers):
            handler.send_response(304)
            handler.send_header("Content-Length", "0")
            if route.etag:
                handler.send_header("ETag", route.etag)
            handler.end_headers()
            return
        handler.send_response(route.status)
        handler.send_header("Content-Type", route.content_type)
        for name, value in route.headers.items():
            handler.send_header(name, value)
        if route.etag:
            handler.send_header("ETag", route.etag)
        if route.last_modified:
            handler.send_header("Last-Modified", route.last_modified)
        with contextlib.suppress(OSError):
            if route.endless or route.drip:
                handler.send_header("Connection", "close")
                handler.end_headers()
                self._stream(handler, route)
                handler.close_connection = True
                return
            handler.send_header("Content-Length", str(len(route.body)))
            handler.end_headers()
            handler.wfile.write(route.body)

    def _stream(self, handler: BaseHTTPRequestHandler, route: Route) -> None:
        if route.endless:
            chunk = b"<p>" + b"Endlos. " * 1000 + b"</p>\n"
            while not self._stopping.is_set():
                handler.wfile.write(chunk)
            return
        for i in range(len(route.body)):
            if self._stopping.wait(route.drip):
                return
            handler.wfile.write(route.body[i: i + 1])
            handler.wfile.flush()

    @staticmethod
    def _not_modified(route: Route, headers: dict[str, str]) -> bool:
        if route.etag and headers.get("if-none-match") == route.etag:
            return True
        if route.last_modified and "if-modified-since" in headers and "if-none-match" not in headers:
            with contextlib.suppress(TypeError, ValueError):
                return parsedate_to_datetime(headers["if-modified-since"]) >= parsedate_to_datetime(route.last_modified)
        return False


__all__ = ["Article", "FakeSite", "Route", "article", "atom", "page_html", "rss", "sitemap", "sitemap_index"]
