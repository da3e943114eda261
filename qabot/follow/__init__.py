"""``qabot follow``: poll feeds and sitemaps, archive new and changed articles, update the index.

``addresses``  which hosts and addresses may be reached (pure)
``guard``      the HTTP client whose connections go only to checked addresses
``fetcher``    polite, bounded fetches: intervals, conditional GET, caps, redirects, Retry-After
``robots``     robots.txt (RFC 9309) (pure)
``sources``    feeds, sitemaps, sitemap indexes, source lists (pure)
``state``      what was fetched, validators, failures, robots, the lock (SQLite in the archive)
``warcs``      the round's pages as a .warc.gz file in the archive, crash-safe
``report``     a round's report and the retry policy (pure)
``rounds``     one round
``loop``       rounds every N minutes, recovery, the index update after each
"""

from __future__ import annotations

from qabot.follow.fetcher import Fetched, Fetcher
from qabot.follow.loop import IndexUpdate, expand_sources, follow
from qabot.follow.report import Failure, RoundReport
from qabot.follow.rounds import Round, RoundOptions
from qabot.follow.state import FollowError

__all__ = ["Failure", "Fetched", "Fetcher", "FollowError", "IndexUpdate", "Round", "RoundOptions", "RoundReport", "expand_sources",
           "follow"]
