#!/usr/bin/env python
"""Index an archive and measure it against the limit: the model's own encode time.

    .venv/bin/python -m scripts.bench.benchmark ../shared/corpora/10kgnad-test.csv [--limit 300]
        [--faiss-sizes 100000,1000000] [--skip-faiss] [--questions 30] [--compare-fp32]
        [--store-url postgresql://user:password@host/db]

Prints one JSON object:

- ``raw_encode``: plain ``SentenceTransformer.encode`` of exactly the texts the indexer
  embeds, in its batches: per batch of articles (``qabot.indexer.batches``) one call on the
  chunk texts and the ``qabot.indexer.sentences_for`` sentence texts, with the same prompt,
  batch size, normalisation and precision: the floor for indexing; with ``--compare-fp32``
  also in plain float32 (``raw_encode_fp32``);
- ``index``: a full ``build_index`` into a fresh temporary folder (reading, chunking,
  embedding, SQLite, FAISS, the atomic swap), its ratio to the raw encode (target
  ``<= RATIO_TARGET``), chunks, sentences, texts/s, and the size on disk of the live generation;
- ``rerun``: the same archive again (unchanged: embeds nothing);
- ``postgres`` (with ``--store-url``, an empty database): the same build, rerun and ask into
  PostgreSQL + pgvector, with its ratio to the same raw encode and its size in the database;
- ``ask``: warm ``Retriever.ask`` latency p50/p95 over distinct questions (each asked once,
  after one warm-up);
- ``faiss``: search latency, recall and memory at synthetic 100k/1M chunks
  (scripts/bench/bench_faiss.py);
- ``peak_rss_mb`` after each phase (the process's high-water mark).

The model is loaded once, before timing, as the CLI would. Model load time is reported apart.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

from qabot import Settings
from qabot.answering.retriever import Retriever
from qabot.indexer import batches, build_index, chunks_for, sentences_for
from qabot.ingest.archive import iter_articles
from qabot.locations import PgUrl
from qabot.models.embedding import embedder_for
from qabot.store import read_manifest

RATIO_TARGET = 1.10  # index time / raw encode time

QUESTIONS = [
    "Wie hoch ist die Arbeitslosigkeit in Österreich?", "Who won the election in Austria?",
    "Was hat die Regierung beim Budget beschlossen?", "What did the central bank decide about interest rates?",
    "Wie viele Flüchtlinge kamen nach Österreich?", "Which club won the Bundesliga match?",
    "Wann beginnt die Fußball-Europameisterschaft?", "How much did the company earn last year?",
    "Wer ist der neue Trainer?", "What happened at the climate conference?",
    "Welche Partei gewann die Wahl in Wien?", "Why did the share price fall?",
    "Was kostet das neue Smartphone?", "Where did the earthquake happen?",
    "Wie reagierte die EU auf Griechenland?", "Who is the new chancellor?",
    "Was fordert die Gewerkschaft?", "How many people died in the attack?",
    "Wann kommt das neue Gesetz?", "What did scientists discover about the brain?",
    "Wer spielt im Finale?", "Which film won the award?", "Wie geht es mit der Hypo weiter?",
    "What are the plans for the new airport?", "Was sagt der Bundespräsident?",
    "How did the Austrian skiers do?", "Warum streiken die Lehrer?", "What is the weather forecast?",
    "Wie entwickelt sich die Inflation?", "Who was arrested by the police?",
]


def _rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _limited_archive(archive: Path, limit: int | None, folder: Path) -> Path:
    """The first ``limit`` articles as JSONL (or the archive itself without a limit)."""
    if not limit:
        return archive
    out = folder / "archive.jsonl"
    with out.open("w", encoding="utf-8") as fh:
        for n, article in enumerate(iter_articles(archive, on_problem=lambda p: None)):
            if n >= limit:
                break
            record = {"id": article.id, "title": article.title, "date": article.date, "url": article.url,
                      "source": article.source, "text": article.text}
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    return out


def indexer_batches(archive: Path, embedder, settings: Settings) -> tuple[list[list[str]], int, int]:
    """The texts of each ``embed_passages`` call the indexer makes on a fresh index, and the
    numbers of chunks and sentences: per batch of articles, its chunks then their sentences."""
    items = []
    for article in iter_articles(archive, on_problem=lambda p: None):
        chunks = chunks_for(article, embedder, chunk_tokens=settings.chunk_tokens, chunk_overlap=settings.chunk_overlap)
        if chunks:  # the indexer skips an article without text to index
            items.append((article, chunks))
    calls, chunk_count, sentence_count = [], 0, 0
    # The indexer's own grouping, so each call here holds exactly what one of its calls holds.
    for batch in batches(items, max_chunks=settings.batch_size * 32):
        chunk_texts = [c.text for _, chunks in batch for c in chunks]
        sentence_texts = [s.text for _, chunks in batch for s in sentences_for(chunks)]
        calls.append(chunk_texts + sentence_texts)
        chunk_count += len(chunk_texts)
        sentence_count += len(sentence_texts)
    return calls, chunk_count, sentence_count


def raw_encode(embedder, calls: list[list[str]], batch_size: int) -> dict:
    """The limit: the model's encode of the indexer's exact inputs in its calls, nothing else."""
    model = embedder.sentence_transformer
    inputs = [[embedder.passage_prompt + t for t in texts] for texts in calls]
    first = next((texts for texts in inputs if texts), [])
    model.encode(first[:batch_size], prompt="", batch_size=batch_size)  # warm-up
    started = time.perf_counter()
    for texts in inputs:
        model.encode(texts, prompt="", batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True)
    seconds = time.perf_counter() - started
    total = sum(len(texts) for texts in inputs)
    return {"texts": total, "calls": len(inputs), "seconds": round(seconds, 2), "texts_per_s": round(total / seconds, 2)}


def live_size_bytes(index_dir: Path) -> int:
    """Bytes of every file in the index's live generation folder."""
    generation = read_manifest(index_dir).generation
    folder = index_dir / generation if generation else index_dir
    if not generation:  # an index without generations: its files sit beside the manifest
        return sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def bench_ask(index_dir: Path | PgUrl, settings: Settings, embedder, questions: list[str]) -> dict:
    retriever = Retriever.open(index_dir, settings=settings, embedder=embedder)
    retriever.ask("Was ist passiert?")  # warm-up
    timings = []
    for question in questions:
        started = time.perf_counter()
        retriever.ask(question)
        timings.append(time.perf_counter() - started)
    retriever.close()
    return {
        "questions": len(timings),
        "p50_ms": round(1000 * statistics.median(timings), 1),
        "p95_ms": round(1000 * _percentile(timings, 0.95), 1),
        "max_ms": round(1000 * max(timings), 1),
    }


def bench_postgres(archive: Path, url: PgUrl, settings: Settings, embedder, raw_seconds: float, questions: list[str]) -> dict:
    """The same archive indexed into PostgreSQL (an empty database): time, ratio, size, rerun and ask."""
    from qabot.store.backends import exists, index_stats

    if exists(url):
        raise SystemExit(f"{url} already holds an index; give an empty database")
    report = build_index(archive, url, embedder=embedder, chunk_tokens=settings.chunk_tokens,
                         chunk_overlap=settings.chunk_overlap, batch_size=settings.batch_size)
    again = build_index(archive, url, embedder=embedder, chunk_tokens=settings.chunk_tokens,
                        chunk_overlap=settings.chunk_overlap, batch_size=settings.batch_size)
    return {
        "articles": report.articles_total, "chunks": report.chunks_total, "sentences": report.sentences_total,
        "seconds": round(report.seconds, 2),
        "texts_per_s": round((report.chunks_total + report.sentences_total) / report.seconds, 2),
        "ratio_to_raw_encode": round(report.seconds / max(raw_seconds, 1e-9), 3),
        "size_bytes": index_stats(url)["bytes_on_disk"],
        "rerun": {"seconds": round(again.seconds, 2), "chunks_embedded": again.chunks_embedded},
        "ask": bench_ask(url, settings, embedder, questions),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("archive", type=Path)
    parser.add_argument("--limit", type=int, default=None, help="Only the first N articles.")
    parser.add_argument("--questions", type=int, default=len(QUESTIONS))
    parser.add_argument("--faiss-sizes", default="100000,1000000")
    parser.add_argument("--skip-faiss", action="store_true")
    parser.add_argument("--store-url", metavar="URL", help="also index into this empty PostgreSQL database "
                        "(postgresql://user:password@host/db) and report it beside the folder: time, ratio, size, ask")
    parser.add_argument("--compare-fp32", action="store_true",
                        help="Also time the raw encode in plain fp32 (when the configured precision is not fp32).")
    args = parser.parse_args(argv)

    settings = Settings.load()
    result: dict = {"archive": str(args.archive), "limit": args.limit, "model": settings.model,
                    "batch_size": settings.batch_size, "chunk_tokens": settings.chunk_tokens}
    started = time.perf_counter()
    embedder = embedder_for(settings)
    result["model_load_seconds"] = round(time.perf_counter() - started, 2)
    result["embedder"] = repr(embedder)

    with tempfile.TemporaryDirectory(prefix="qabot-bench-") as tmp:
        archive = _limited_archive(args.archive, args.limit, Path(tmp))
        started = time.perf_counter()
        calls, chunk_count, sentence_count = indexer_batches(archive, embedder, settings)
        result["chunking_seconds"] = round(time.perf_counter() - started, 2)
        result["raw_encode"] = {"chunks": chunk_count, "sentences": sentence_count,
                                **raw_encode(embedder, calls, settings.batch_size)}
        if args.compare_fp32 and getattr(embedder, "precision", "fp32") != "fp32":
            fp32 = embedder_for(dataclasses.replace(settings, precision="fp32"))
            result["raw_encode_fp32"] = raw_encode(fp32, calls, settings.batch_size)
            result["speedup_vs_fp32"] = round(
                result["raw_encode"]["texts_per_s"] / result["raw_encode_fp32"]["texts_per_s"], 2)
            del fp32
        result["peak_rss_mb_after_encode"] = _rss_mb()

        index_dir = Path(tmp) / "index"
        report = build_index(archive, index_dir, embedder=embedder, chunk_tokens=settings.chunk_tokens,
                             chunk_overlap=settings.chunk_overlap, batch_size=settings.batch_size)
        ratio = report.seconds / max(result["raw_encode"]["seconds"], 1e-9)
        result["index"] = {
            "articles": report.articles_total, "chunks": report.chunks_total, "sentences": sentence_count,
            "seconds": round(report.seconds, 2),
            "texts_per_s": round((report.chunks_total + sentence_count) / report.seconds, 2),
            "ratio_to_raw_encode": round(ratio, 3), "ratio_target": RATIO_TARGET, "within_target": ratio <= RATIO_TARGET,
            "size_bytes": live_size_bytes(index_dir),
            "problems": len(report.errors),
        }
        if (report.chunks_total, report.sentences_total) != (chunk_count, sentence_count):
            result["index"]["warning"] = (f"indexed {report.chunks_total} chunks and {report.sentences_total} sentences, "
                                          f"raw encode saw {chunk_count} and {sentence_count}")
        result["peak_rss_mb_after_index"] = _rss_mb()
        again = build_index(archive, index_dir, embedder=embedder, chunk_tokens=settings.chunk_tokens,
                            chunk_overlap=settings.chunk_overlap, batch_size=settings.batch_size)
        result["rerun"] = {"seconds": round(again.seconds, 2), "chunks_embedded": again.chunks_embedded}
        result["ask"] = bench_ask(index_dir, settings, embedder, QUESTIONS[: args.questions])
        result["peak_rss_mb_after_ask"] = _rss_mb()
        if args.store_url:
            result["postgres"] = bench_postgres(archive, PgUrl(args.store_url), settings, embedder, result["raw_encode"]["seconds"],
                                                QUESTIONS[: args.questions])

    if not args.skip_faiss:
        from scripts.bench import bench_faiss

        result["faiss"] = bench_faiss.run([int(s) for s in args.faiss_sizes.split(",")])
    index = result["index"]
    print(f"index {index['seconds']} s / raw encode {result['raw_encode']['seconds']} s = {index['ratio_to_raw_encode']} "
          f"(target <= {RATIO_TARGET}); {index['chunks']} chunks, {index['sentences']} sentences, "
          f"{index['size_bytes'] / 2**20:.1f} MiB on disk", file=sys.stderr)
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
