"""The vector index: ids are rowids at every size, both kinds round-trip, optimize keeps recall."""

from __future__ import annotations

import io

import faiss
import numpy as np
import pytest

from qabot.errors import StoreError
from qabot.store.vectors import VectorIndex, nlist_for, peek, recall_at

D = 32


def _clustered(n: int, seed: int = 0, clusters: int = 40) -> np.ndarray:
    """Normalised vectors around a few centres (uniform random vectors would flatter nothing)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, D))
    x = centres[rng.integers(0, clusters, size=n)] + 0.5 * rng.normal(size=(n, D))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _rowids(n: int, start: int = 7) -> np.ndarray:
    """Sparse, non-positional ids, like SQLite rowids after deletions."""
    return (np.arange(n, dtype=np.int64) * 3 + start)


def _exact(x: np.ndarray, ids: np.ndarray, q: np.ndarray, k: int) -> np.ndarray:
    return ids[np.argsort(-(q @ x.T), axis=1, kind="stable")[:, :k]]


def _ivf(n: int = 4000, seed: int = 0) -> tuple[VectorIndex, np.ndarray, np.ndarray]:
    x, ids = _clustered(n, seed), _rowids(n)
    index = VectorIndex.empty(D, approx_threshold=1000)
    index.add(x, ids)
    assert index.optimize() is True
    return index, x, ids


def _serialised(index: VectorIndex) -> bytes:
    buffer = io.BytesIO()
    index.write(buffer)
    return buffer.getvalue()


def _queries(x: np.ndarray, m: int = 100, seed: int = 1) -> np.ndarray:
    """Near stored vectors but not equal to them."""
    rng = np.random.default_rng(seed)
    q = x[rng.choice(len(x), m, replace=False)] + 0.3 * rng.normal(size=(m, D)) / np.sqrt(D)
    return (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)


def test_empty_index_finds_nothing():
    index = VectorIndex.empty(D)
    assert (index.kind, index.d, index.ntotal) == ("flat", D, 0)
    scores, ids = index.search(_clustered(2), 5)
    assert ids.shape == (2, 5) and (ids == -1).all() and np.isneginf(scores).all()
    assert index.search(_clustered(1), 0)[1].shape == (1, 0)
    assert index.ids().shape == (0,) and index.reconstruct([]).shape == (0, D)
    assert index.remove(np.array([1, 2])) == 0
    assert index.optimize() is False


def test_flat_add_search_remove_reconstruct():
    x, ids = _clustered(50), _rowids(50)
    index = VectorIndex.empty(D)
    index.add(x, ids)
    scores, found = index.search(x[:3], 60)  # k > ntotal: padded with -1 / -inf
    assert list(found[:, 0]) == list(ids[:3])
    assert np.allclose(scores[:, 0], 1.0, atol=1e-5)
    assert (found[:, 50:] == -1).all() and np.isneginf(scores[:, 50:]).all()
    assert sorted(index.ids()) == sorted(ids)
    assert np.allclose(index.reconstruct([int(ids[4]), int(ids[0])]), x[[4, 0]])
    assert index.remove(np.array([ids[0], ids[1], 999_999])) == 2
    assert index.ntotal == 48 and ids[0] not in index.search(x[:1], 48)[1]
    with pytest.raises(KeyError):
        index.reconstruct([int(ids[0])])


def test_add_checks_shapes():
    index = VectorIndex.empty(D)
    with pytest.raises(ValueError):
        index.add(_clustered(3)[:, :8], _rowids(3))
    with pytest.raises(ValueError):
        index.add(_clustered(3), _rowids(2))


def test_optimize_converts_to_ivf_keeping_ids_and_recall():
    index, x, ids = _ivf()
    assert index.kind == "ivf" and index.ntotal == len(ids) and 1 <= index.nprobe <= index.nlist
    assert np.array_equal(np.sort(index.ids()), ids)
    q = _queries(x)
    _, found = index.search(q, 10)
    assert recall_at(found, _exact(x, ids, q, 10)) >= 0.98
    assert np.allclose(index.reconstruct(ids[[5, 1, 3000]]), x[[5, 1, 3000]], atol=1e-3)  # float16
    with pytest.raises(KeyError):
        index.reconstruct([int(ids[-1]) + 1])
    assert index.optimize() is False  # already right for its size


def test_ivf_add_and_remove_by_id():
    index, x, ids = _ivf()
    assert index.remove(np.array([ids[0], ids[10], ids[10], -5])) == 2
    assert index.ntotal == len(ids) - 2
    assert not np.isin(ids[[0, 10]], index.ids()).any()
    _, found = index.search(x[[0, 10]], 20)
    assert not np.isin(ids[[0, 10]], found).any()
    extra = _clustered(10, seed=9)
    index.add(extra, np.array([1, 2, 3, 4, 5, 6, 100_000, 100_001, 100_002, 100_003]))
    assert index.search(extra[-1:], 1)[1][0, 0] == 100_003
    assert np.allclose(index.reconstruct([100_000]), extra[6:7], atol=1e-3)


@pytest.mark.parametrize("kind", ["flat", "ivf"])
def test_round_trip_through_a_file(kind, tmp_path):
    if kind == "ivf":
        index, x, ids = _ivf()
    else:
        x, ids = _clustered(300), _rowids(300)
        index = VectorIndex.empty(D)
        index.add(x, ids)
    path = tmp_path / "vectors.faiss"
    with open(path, "wb") as fh:
        index.write(fh)
    with open(path, "rb") as fh:
        loaded = VectorIndex.load(fh, source=str(path))
    assert (loaded.kind, loaded.d, loaded.ntotal, loaded.nprobe) == (kind, D, len(ids), index.nprobe)
    q = _queries(x, 20)
    assert np.array_equal(loaded.search(q, 10)[1], index.search(q, 10)[1])
    assert np.array_equal(np.sort(loaded.ids()), ids)
    assert loaded.remove(ids[:3]) == 3  # the id -> vector map survived the trip
    assert np.allclose(loaded.reconstruct(ids[3:5]), index.reconstruct(ids[3:5]))


def test_write_and_read_a_file(tmp_path):
    index, _x, ids = _ivf()
    path = tmp_path / "vectors.faiss"
    with open(path, "wb") as fh:
        index.write(fh)
    assert path.read_bytes() == _serialised(index)
    assert VectorIndex.read(path).kind == "ivf"
    assert VectorIndex.from_bytes(path.read_bytes()).ntotal == len(ids)
    assert faiss.read_index(str(path)).ntotal == len(ids)  # plain FAISS can open it


def test_loads_the_legacy_idmap2_flat_bytes():
    x, ids = _clustered(40), _rowids(40)
    legacy = faiss.IndexIDMap2(faiss.IndexFlatIP(D))
    legacy.add_with_ids(x, ids)
    index = VectorIndex.from_bytes(faiss.serialize_index(legacy).tobytes(), source="old/vectors.faiss")
    assert index.kind == "flat" and index.ntotal == 40
    assert index.search(x[7:8], 1)[1][0, 0] == ids[7]
    assert np.allclose(index.reconstruct([int(ids[7])]), x[7:8])


@pytest.mark.parametrize(
    "data",
    [b"", b"not a faiss index at all", "truncated", "l2", "hnsw", "idmap2-hnsw"],
)
def test_unreadable_bytes_raise_store_error_naming_the_source(data):
    x = _clustered(40)
    if data == "truncated":
        data = _serialised(VectorIndex.empty(D))[:20]
    elif data == "l2":
        l2 = faiss.IndexIDMap2(faiss.IndexFlatL2(D))
        l2.add_with_ids(x, _rowids(40))
        data = faiss.serialize_index(l2).tobytes()
    elif data == "hnsw":
        hnsw = faiss.IndexHNSWFlat(D, 8, faiss.METRIC_INNER_PRODUCT)
        hnsw.add(x)
        data = faiss.serialize_index(hnsw).tobytes()
    elif data == "idmap2-hnsw":
        wrapped = faiss.IndexIDMap2(faiss.IndexHNSWFlat(D, 8, faiss.METRIC_INNER_PRODUCT))
        wrapped.add_with_ids(x, _rowids(40))
        data = faiss.serialize_index(wrapped).tobytes()
    with pytest.raises(StoreError, match=r"ix/gen-3/vectors\.faiss"):
        VectorIndex.from_bytes(data, source="ix/gen-3/vectors.faiss")


@pytest.mark.parametrize("kind", ["flat", "ivf"])
def test_peek_reads_kind_size_and_ids_as_a_full_load_does(kind, tmp_path):
    if kind == "ivf":
        index, _x, ids = _ivf()
    else:
        ids = _rowids(300)
        index = VectorIndex.empty(D)
        index.add(_clustered(300), ids)
    path = tmp_path / "vectors.faiss"
    with open(path, "wb") as fh:
        index.write(fh)
    info = peek(path)
    assert (info.kind, info.d, info.ntotal) == (kind, D, len(ids))
    assert np.array_equal(info.ids, VectorIndex.read(path).ids()) and info.ids.dtype == np.int64


@pytest.mark.parametrize("data", ["truncated", "garbage", "l2"])
def test_peek_refuses_what_a_full_load_refuses(data, tmp_path):
    index = VectorIndex.empty(D)
    index.add(_clustered(300), _rowids(300))
    raw = {"truncated": _serialised(index)[:5000], "garbage": b"not a faiss index"}.get(data)
    if raw is None:
        raw = faiss.serialize_index(faiss.IndexIDMap2(faiss.IndexFlatL2(D))).tobytes()
    path = tmp_path / "vectors.faiss"
    path.write_bytes(raw)
    with pytest.raises(StoreError, match=r"vectors\.faiss"):
        peek(path)
    with pytest.raises(StoreError, match=r"vectors\.faiss"):
        VectorIndex.read(path)


def test_optimize_goes_back_to_flat_when_the_index_shrinks():
    index, x, ids = _ivf()
    keep = ids[:400]  # below half the threshold
    index.remove(ids[400:])
    assert index.optimize() is True and index.kind == "flat"
    assert np.array_equal(np.sort(index.ids()), keep)
    _, found = index.search(x[:5], 1)
    assert list(found[:, 0]) == list(keep[:5])


def test_optimize_retrains_when_grown_well_past_its_training_size():
    index, _, _ = _ivf(n=1000)
    trained_nlist = index.nlist
    more = _clustered(4000, seed=3)
    index.add(more, _rowids(4000, start=1_000_000))
    assert index.optimize() is True
    assert index.kind == "ivf" and index.nlist >= 4 * trained_nlist and index.ntotal == 5000


def test_optimize_is_deterministic():
    a, _, _ = _ivf()
    b, _, _ = _ivf()
    assert _serialised(a) == _serialised(b)


def test_search_restores_the_thread_setting():
    index, x, _ = _ivf()
    before = faiss.omp_get_max_threads()
    index.search(x[:1], 5)
    assert faiss.omp_get_max_threads() == before


def test_nlist_grows_like_sqrt_and_keeps_enough_points_per_list():
    assert nlist_for(100_000) == 256 and nlist_for(1_000_000) == 1024
    for n in (1000, 5000, 50_000):
        assert n // nlist_for(n) >= 39


def _bench_module():
    from scripts.bench import bench_faiss

    return bench_faiss


def test_bench_vectors_are_normalised_deterministic_and_clustered():
    bench = _bench_module()
    x, q = bench.make_corpus(3000, nq=20, seed=5)
    again, _ = bench.make_corpus(3000, nq=20, seed=5)
    assert x.shape == (3000, bench.DIM) and q.shape == (20, bench.DIM)
    assert np.array_equal(x, again)
    assert np.allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    best = np.sort(q @ x.T, axis=1)[:, -1]
    assert (best < 0.99).all() and best.mean() > (q @ x.T).mean() + 0.05  # near, never equal


def test_bench_run_reports_both_kinds_for_the_lead_benchmark():
    report = _bench_module().run([2000], queries=40, latency_queries=20, progress=False)
    kinds = report["sizes"]["2000"]["kinds"]
    assert report["sizes"]["2000"]["picked"] == "flat"
    assert kinds["flat"]["recall_at_10"] == 1.0 and kinds["ivf"]["recall_at_10"] >= 0.98
    for stats in kinds.values():
        assert stats["search_k50_p50_ms"] > 0 and stats["peak_rss_mb"] > 0 and stats["index_bytes"] > 0
