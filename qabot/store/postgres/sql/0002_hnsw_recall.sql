-- 0002: denser HNSW graphs (m 32, ef_construction 200; pgvector's defaults are 16 and 64). Measured on
-- 100,000 real e5 sentence vectors (scripts/hnsw_recall.py): the default graph found 0.92 of the exact
-- top 10 for sentences of the archive asked as questions and 0.74 for off-topic questions at ef_search
-- 100 (0.99 / 0.96 only at 1000, 15 ms); this one finds 0.997 / 0.980 at ef_search 400 (13-14 ms).
-- On an index that holds data this rebuilds both graphs (about 1.4 s per 1,000 sentences on 2 cores).
-- The new ones are built beside the old (CREATE INDEX blocks writers, not readers) and swapped in at the
-- end, so readers keep answering through the old ones until the migration commits.
set local maintenance_work_mem = '1GB';
create index chunks_embedding_0002 on chunks using hnsw (embedding halfvec_ip_ops) with (m = 32, ef_construction = 200);
create index sentences_embedding_0002 on sentences using hnsw (embedding halfvec_ip_ops) with (m = 32, ef_construction = 200);
drop index if exists chunks_embedding;
drop index if exists sentences_embedding;
alter index chunks_embedding_0002 rename to chunks_embedding;
alter index sentences_embedding_0002 rename to sentences_embedding;
