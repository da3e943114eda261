"""The index commands: qabot index | delete | check | stats | copy.

They work on a folder index and on a ``postgresql://`` one alike (``--index`` / QABOT_INDEX).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from qabot.frontends.cli_common import LOCATION, count, edge, emit_json, index_option, sample_archive, settings_for
from qabot.locations import Location

if TYPE_CHECKING:
    from qabot.indexer import IndexReport


@click.command()
@click.argument("archive", type=click.Path(path_type=Path), required=False)
@index_option
@click.option("--sample", is_flag=True, help="Index the bundled sample archive.")
@click.option("--if-missing", is_flag=True, help="Do nothing when an index already exists in the folder.")
@click.option("--prune", is_flag=True, help="Also remove articles that are no longer in ARCHIVE.")
@click.option("--rebuild", is_flag=True, help="Build a fresh index beside the live one and swap it in "
              "(needed to change the model or chunk settings).")
@click.option("--repair", is_flag=True, help="Rebuild the index from ARCHIVE if it is damaged (a sound one is updated "
              "as usual); without it a damaged index is refused.")
@click.option("--shard", default=None, metavar="I/N", help="Index only the articles whose id hashes to shard I of N "
              "(run N indexers at once, e.g. on a PostgreSQL index; --prune then prunes that shard only).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
@click.option("--fail-on-problems", is_flag=True, help="Exit 2 when any input was skipped (for a cron job that should "
              "alert); without it bad files are listed and the exit status is 0.")
@click.pass_context
@edge
def index(ctx: click.Context, archive: Path | None, index_dir: Location | None, sample: bool, if_missing: bool,
          prune: bool, rebuild: bool, repair: bool, shard: str | None, as_json: bool, fail_on_problems: bool) -> None:
    """Index ARCHIVE (a folder, read recursively, or one file) into the index (a folder or a PostgreSQL URL).

    Formats: text files starting with ' date YYYY-MM-DD ', JSON Lines (.jsonl), CSV with a
    header, web pages (.html), web archives (.warc, .warc.gz), NewsML-G2 / NITF (.xml) and dpa
    digitalwires (.json); docs/using.md and docs/sources.md say what is read from each. Unchanged articles are skipped; changed ones are replaced. Bad files
    and lines are reported with path and line; everything else is still indexed.
    Changes are swapped in atomically: readers see the old or the new index (in PostgreSQL:
    whole batches of articles), and a run that is killed or stopped with Ctrl-C is resumed by
    the next one.
    """
    from qabot.indexer import Shard, build_index
    from qabot.models.embedding import embedder_for
    from qabot.store.backends import exists

    settings = settings_for(ctx, index_dir=index_dir)
    if sample:
        if archive is not None:
            raise click.UsageError("give either ARCHIVE or --sample, not both")
        archive = sample_archive()
    if archive is None:
        raise click.UsageError("missing ARCHIVE (or --sample for the bundled sample archive)")
    part = Shard.parse(shard) if shard is not None else None
    if if_missing and exists(settings.index_dir, timeout=settings.pg_timeout):
        if not as_json:
            click.echo(f"index exists at {settings.index_dir}; nothing to do")
        return
    embedder = embedder_for(settings)
    report = build_index(
        archive, settings.index_dir, embedder=embedder, chunk_tokens=settings.chunk_tokens,
        chunk_overlap=settings.chunk_overlap, batch_size=settings.batch_size,
        progress=sys.stderr.isatty() and not as_json, prune=prune, rebuild=rebuild, repair=repair,
        checkpoint_seconds=settings.checkpoint_seconds, shard=part, pg_timeout=settings.pg_timeout,
        pg_pool=settings.pg_pool, max_article_bytes=settings.max_article_bytes,
    )
    if as_json:
        emit_json(report.to_dict())
    else:
        _print_index_report(report, archive, prune=prune)
    if fail_on_problems and report.articles_skipped:
        sys.exit(2)


def _print_index_report(report: IndexReport, archive: Path, *, prune: bool) -> None:
    """The summary line of ``qabot index`` on stdout, its problems on stderr."""
    click.echo(
        f"indexed {count(report.articles_indexed, 'article')} ({count(report.chunks_embedded, 'chunk')}) from {archive} into "
        f"{report.index_dir} in {report.seconds:.1f} s: {report.articles_read} read, "
        f"{report.articles_unchanged} unchanged, {report.articles_skipped} skipped"
        + (f", {report.articles_removed} removed" if prune else "") + (" (resumed an interrupted run)" if report.resumed else "")
        + "; "
        f"the index now holds {count(report.articles_total, 'article')}, {count(report.chunks_total, 'chunk')}"
    )
    if report.errors:
        click.echo(f"{len(report.errors)} problems:", err=True)
        for problem in report.errors:
            click.echo(f"  {problem}{'' if problem.skipped else ' (read anyway)'}", err=True)


@click.command()
@click.argument("article_ids", nargs=-1, required=True)
@index_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
@edge
def delete(ctx: click.Context, article_ids: tuple[str, ...], index_dir: Location | None, as_json: bool) -> None:
    """Remove the articles ARTICLE_IDS (with their chunks and vectors) from the index.

    The change is swapped in atomically. Exit 1 when an id is not in the index (the
    others are still removed).
    """
    from qabot.indexer import delete_articles

    settings = settings_for(ctx, index_dir=index_dir)
    report = delete_articles(settings.index_dir, article_ids, pg_timeout=settings.pg_timeout)
    if as_json:
        emit_json({"index": str(settings.index_dir), "removed": list(report.removed), "unknown": list(report.unknown),
                    "chunks_removed": report.chunks_removed, "articles_total": report.articles_total,
                    "chunks_total": report.chunks_total})
    else:
        click.echo(f"removed {count(len(report.removed), 'article')} ({count(report.chunks_removed, 'chunk')}); "
                   f"the index now holds {count(report.articles_total, 'article')}, {count(report.chunks_total, 'chunk')}")
        for article_id in report.unknown:
            click.echo(f"not in the index: {article_id}", err=True)
    if report.unknown:
        sys.exit(1)


@click.command()
@index_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
@edge
def check(ctx: click.Context, index_dir: Location | None, as_json: bool) -> None:
    """Verify an index: manifest, SQLite, FAISS ids == chunk rowids, counts, full-text index
    (in PostgreSQL: settings, migrations, pgvector, counts, vectors, HNSW and full-text indexes).

    Exit 1 with a report when something is wrong.
    """
    from qabot.store.backends import check_index

    settings = settings_for(ctx, index_dir=index_dir)
    report = check_index(settings.index_dir, timeout=settings.pg_timeout)
    if as_json:
        emit_json(report.to_dict())
    else:
        click.echo(f"{settings.index_dir}: " + ("ok" if report.ok else "PROBLEMS") + f" ({report.counts})")
        for problem in report.problems:
            click.echo(f"  problem: {problem}")
        for note in report.notes:
            click.echo(f"  note: {note}")
    if not report.ok:
        sys.exit(1)


@click.command()
@index_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
@edge
def stats(ctx: click.Context, index_dir: Location | None, as_json: bool) -> None:
    """Articles, chunks, vectors, date range, sources, size on disk and model of an index."""
    from qabot.store.backends import index_stats

    settings = settings_for(ctx, index_dir=index_dir)
    result = index_stats(settings.index_dir, timeout=settings.pg_timeout)
    if as_json:
        emit_json(result)
    else:
        for key, value in result.items():
            click.echo(f"{key:>30}: {value}")


@click.command()
@click.argument("source", type=LOCATION)
@click.argument("destination", type=LOCATION)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
@edge
def copy(ctx: click.Context, source: Location, destination: Location, as_json: bool) -> None:
    """Copy the index at SOURCE to DESTINATION, with its vectors (nothing is re-embedded).

    Either may be a folder or a postgresql:// URL: grow from the embedded default into
    PostgreSQL without a rebuild, or take a PostgreSQL index home as a folder. DESTINATION
    must be new or empty. Readers of DESTINATION see whole batches of articles as they arrive.
    """
    from qabot.store.copying import copy_index

    settings = settings_for(ctx)
    report = copy_index(source, destination, timeout=settings.pg_timeout)
    if as_json:
        emit_json(report.to_dict())
    else:
        click.echo(f"copied {count(report.articles, 'article')}, {count(report.chunks, 'chunk')} and "
                   f"{count(report.sentences, 'sentence')} with their vectors from {source} to {destination} "
                   f"in {report.seconds:.1f} s")
