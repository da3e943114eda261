-- 0001: the index. One row in qabot_meta (model and chunker settings); articles, their chunks and
-- sentences with float16 vectors ({dimension} dimensions, HNSW by inner product: the vectors are
-- normalised, so it is cosine); the chunk text's full text (the simple configuration: words as written,
-- case folded; German stemming measured worse in the keyword leg, see README).
create table qabot_meta (
    id boolean primary key default true check (id),
    model text not null,
    dimension integer not null,
    chunk_tokens integer not null,
    chunk_overlap integer not null,
    format_version integer not null,
    created_at text not null,
    updated_at text not null
);

create table articles (
    id text primary key,
    title text not null,
    date text,
    url text,
    source text,
    path text not null,
    line integer,
    content_hash text not null,
    text text not null,
    n_chunks integer not null,
    n_sentences integer not null,
    indexed_at text not null
);
create index articles_date on articles (date);

create table chunks (
    id bigint generated always as identity primary key,
    article_id text not null references articles (id) on delete cascade,
    idx integer not null,
    text text not null,
    start integer not null,
    "end" integer not null,
    n_tokens integer not null,
    embedding halfvec({dimension}) not null,
    fts_simple tsvector generated always as (to_tsvector('simple', text)) stored,
    unique (article_id, idx)
);
create index chunks_embedding on chunks using hnsw (embedding halfvec_ip_ops);
create index chunks_fts_simple on chunks using gin (fts_simple);

create table sentences (
    id bigint generated always as identity primary key,
    article_id text not null references articles (id) on delete cascade,
    start integer not null,
    "end" integer not null,
    embedding halfvec({dimension}) not null,
    unique (article_id, start, "end")
);
create index sentences_embedding on sentences using hnsw (embedding halfvec_ip_ops);
