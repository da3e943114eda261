"""Generated archives for lifecycle tests: many articles, deterministic, German-looking text."""

from __future__ import annotations

import json
import random
from pathlib import Path

WORDS = ["Regierung", "Bundestag", "Kanzler", "Wahl", "Haushalt", "Streik", "Bahn", "Energie", "Preise", "Klima", "Gipfel", "Minister", "Hochwasser", "Polizei", "Gericht", "Urteil", "Fußball", "Trainer", "Verein", "Börse", "Inflation", "Zinsen", "Krankenhaus", "Schule", "Lehrer", "Stadt", "Gemeinde", "Brücke", "Straße", "Verkehr", "Flughafen", "Wetter", "Sturm", "Ernte", "Bauern"]


def article_text(seed: int, sentences: int = 12) -> str:
    rng = random.Random(seed)
    out = []
    for n in range(sentences):
        words = [rng.choice(WORDS) for _ in range(rng.randint(6, 14))]
        out.append(f"{' '.join(words).capitalize()} in Satz {n} von Artikel {seed}.")
    return " ".join(out)


def write_archive(path: Path, ids: range | list[int], *, changed: frozenset[int] = frozenset(), sentences: int = 12) -> Path:
    """A JSONL archive with article ``n`` for each id; ``changed`` ids get different text."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for n in ids:
            seed = n + 100_000 if n in changed else n
            record = {
                "id": f"art-{n}", "title": f"Artikel {n}", "date": f"2025-{1 + n % 12:02d}-{1 + n % 28:02d}",
                "url": f"https://example.org/{n}", "source": "test", "text": article_text(seed, sentences),
            }
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path


def snapshot(folder: Path) -> dict[str, object]:
    """What an index holds, independent of rowids: articles with hashes, chunk texts per article,
    sentence spans with their stored vectors."""
    from qabot.store import Store

    with Store.open(folder) as store:
        articles = dict(store.article_hashes())
        chunks = sorted(store.db.execute("select article_id, idx, text from chunks").fetchall())
        sentences = sorted(store.db.execute('select article_id, start, "end", vector from sentences').fetchall())
        assert len(set(store.faiss_ids().tolist())) == store.vectors.ntotal == len(chunks)
    return {"articles": articles, "chunks": chunks, "sentences": sentences}
