"""The database schema, changed only through numbered migrations (sqlite-utils ``Migrations``).

Add a new ``mNNN_...`` function at the end; never edit one that has shipped.
"""

from __future__ import annotations

from sqlite_utils import Database, Migrations

migrations = Migrations("qabot")


@migrations()
def m001_articles_and_chunks(db: Database) -> None:
    db["articles"].create(
        {
            "id": str, "title": str, "date": str, "url": str, "source": str, "path": str, "line": int,
            "content_hash": str, "text": str, "n_chunks": int, "indexed_at": str,
        },
        pk="id",
    )
    db["articles"].create_index(["date"])
    # ``id`` is the rowid and the FAISS id of the chunk's vector. AUTOINCREMENT so an id is
    # never reused after a delete: a stale vector left by a crash can never pass for a new chunk.
    db.execute(
        """
        create table chunks (
            id integer primary key autoincrement,
            article_id text not null references articles(id),
            idx integer not null,
            text text not null,
            start integer not null,
            "end" integer not null,
            n_tokens integer not null
        )
        """
    )
    db["chunks"].create_index(["article_id", "idx"], unique=True)
    # Keyword search over chunk text, kept in step by triggers. remove_diacritics 2 makes
    # "Präsident" match "prasident" too; German umlaut spellings (ae/oe/ue) are left to search.
    db["chunks"].enable_fts(["text"], create_triggers=True, tokenize="unicode61 remove_diacritics 2")


@migrations()
def m002_sentences(db: Database) -> None:
    # One row per sentence of an article (a sentence shared by overlapping chunks once), with
    # its embedding (float16, little-endian): the answer is picked from these, not re-embedded.
    # A chunk's sentences are those whose span lies inside the chunk's.
    db.execute(
        """
        create table sentences (
            id integer primary key autoincrement,
            article_id text not null references articles(id),
            start integer not null,
            "end" integer not null,
            vector blob not null
        )
        """
    )
    db["sentences"].create_index(["article_id", "start", "end"], unique=True)
    # How many sentences an article has stored; null: none yet (an index from before this
    # migration, whose next `qabot index` run embeds them).
    db.execute("alter table articles add column n_sentences integer")
