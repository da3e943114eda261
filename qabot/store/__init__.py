"""The index folder: manifest, generations, SQLite (sqlite-utils, FTS5, migrations), vectors (FAISS), checks.

Layout of an index folder::

    manifest.json       format version, model, dimension, chunker settings, counts, and the
                        live ``generation``: renaming a new manifest into place is the commit
    gen-000007/         one generation (the live one; the previous one is kept for readers)
        qabot.db        articles, chunks, sentences (spans and float16 vectors), chunks_fts
                        (FTS5 on chunk text); opens in Datasette
        vectors.faiss   the vector index; FAISS id == chunks.id (the rowid)
    staging.json        only while an indexing run builds the next generation, or after one was
                        interrupted (the next run with the same settings resumes it)
    .lock               the writer lock (flock): one writer per folder

An index written by ``Store.create`` directly (or by qabot before generations) keeps
``qabot.db`` and ``vectors.faiss`` beside the manifest (``generation == ""``); both read alike.

Everything above the store reaches an index through one seam: :func:`qabot.store.backends.backend_for`
maps a location (this folder, or a ``postgresql://`` URL: :mod:`qabot.store.postgres`) to a
:class:`qabot.store.interface.Backend`. Modules, each using only those listed before it:

``files``        atomic replacement of a file, fsync, the pid lock
``manifest``     ``manifest.json`` and the file names above
``interface``    the protocols every backend implements (Backend, IndexingRun, IndexReader, IndexWriter)
``backends``     the factory: a location -> its backend (imported lazily)
``migrations``   the SQLite schema, changed only by numbered migrations
``vectors``      the FAISS index (exact while small, IVF when large) and reading its ids alone
``vectorfile``   a generation's vector file, read into memory on first use
``sentences``    the sentence vectors stored beside the chunks (float16 blobs)
``partial``      long articles stored in parts across batches
``queries``      the read queries (articles, chunks, sentences, full text), mixed into Store
``store``        :class:`Store`: one open generation, its writes and its vectors
``integrity``    checksums and damage checks of a generation
``generations``  the writer lock, begin / resume / publish / abandon of a generation
``checks``       ``qabot check`` and ``qabot stats`` of a folder
``copying``      ``qabot copy`` between any two backends
``folder_run``   one indexing run on a folder (a staging generation)
``folder``       :class:`FolderBackend`: the folder behind the seam
"""

from qabot.store.manifest import MANIFEST_NAME, Manifest, is_index, read_manifest, same_model
from qabot.store.store import Store

__all__ = ["MANIFEST_NAME", "Manifest", "Store", "is_index", "read_manifest", "same_model"]
