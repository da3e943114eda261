"""A qabot index in PostgreSQL + pgvector, for archives and audiences past one machine.

The same reads and writes as the folder store (:mod:`qabot.store.store`); the ranking code does
not know which one it talks to (:mod:`qabot.store.interface`); a ``postgresql://`` location is a
:class:`qabot.locations.PgUrl`. Modules, each using only those listed before it:

``connection``   connections and the readers' pool; one-line errors; pgvector's types
``schema``       numbered SQL migrations (``sql/NNNN_*.sql``)
``queries``      the reads: articles, chunks, sentences, HNSW and full-text searches
``store``        :class:`PgStore`: opening, settings (``qabot_meta``), transactional writes
``checks``       ``qabot check`` and ``qabot stats`` for a database
"""

from qabot.locations import PgUrl

__all__ = ["PgUrl"]
