"""The index folder: manifest, generations, SQLite (sqlite-utils, FTS5, migrations), vectors (FAISS), checks."""
