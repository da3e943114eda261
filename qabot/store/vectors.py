"""The vector index: exact search while small, an IVF index once large; ids are chunk rowids.

Two kinds, picked by :meth:`VectorIndex.optimize` from the number of vectors:

``flat``  ``IndexIDMap2(IndexFlatIP)``: exact inner product, what qabot always wrote (so old
          ``vectors.faiss`` files load unchanged). A query scans every vector: ~11 ms at
          100k, ~120-160 ms at 1M on one core here; 1.5 KiB a vector (1.5 GiB at 1M).
``ivf``   ``IVF{nlist},SQfp16``, inner product: k-means (on a sample) splits the vectors into
          nlist ~ sqrt(n) lists and a query scans the ``nprobe`` lists nearest to it.
          Vectors are kept as float16: half the memory, same recall (8-bit codes capped
          recall@10 near 0.98). Its ids are the rowids; a hashtable direct map gives
          ``remove`` and ``reconstruct`` by id. ``nprobe`` is tuned on the data itself when
          the index is built: the smallest one reaching recall@10 >= ``TUNE_RECALL`` against
          exact search, on queries made from the stored vectors.

Measured by ``scripts/bench/bench_faiss.py`` (2 shared cores, vectors fitted to real e5 ones,
which are hard for IVF: a question's top ten are spread over many lists): 1M vectors, flat
164 ms p50 / 1.5 GiB / load peak 3.0 GiB; ivf 51 ms / 0.78 GiB / load peak 1.6 GiB
(0.84 GiB with :meth:`read`), recall@10 0.996. HNSW was not used: FAISS's HNSW cannot remove
vectors, and building it for 1M vectors takes many minutes on two cores.

Search runs on ``SEARCH_THREADS`` OpenMP threads: FAISS splits even a single flat query
across threads, and on two shared cores that was 3x slower than one thread. OpenMP keeps the
setting per calling thread; :func:`omp_threads` sets it for the search and restores it.
"""

from __future__ import annotations

import io
import logging
import math
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO

import faiss
import numpy as np

from qabot.errors import StoreError

log = logging.getLogger(__name__)

APPROX_THRESHOLD = 100_000  # flat is ~11 ms/query at 100k on one core; switch to ivf from here
SHRINK_FACTOR = 2  # back to flat below APPROX_THRESHOLD / 2 (hysteresis: no flapping)
REGROW_FACTOR = 4  # retrain once the ideal nlist is 4x the trained one (~5-8x the size)
MIN_APPROX = 1_000  # never cluster fewer vectors than this, whatever the threshold says
TRAIN_PER_LIST = 64  # k-means sample per list (FAISS wants >= 39; more costs time, not recall)
MIN_NLIST, MAX_NLIST = 8, 8192
TUNE_QUERIES = 512
TUNE_RECALL = 0.99  # on the tuning queries; real questions then get ~0.985 (see below)
TUNE_NOISE = 1.0  # tuning query = stored vector + data-shaped noise of the same length.
# Calibrated on 5.7k real e5 vectors and 1,264 XQuAD questions: with nprobe tuned to 0.99 on
# these queries, the real questions got recall@10 0.985 (the bench's synthetic ones 0.992);
# closer tuning queries (noise 0.6) were too easy (0.982 / 0.981).
SEARCH_THREADS = 1
BATCH_QUERIES = 16  # from this many queries at once, let FAISS use all threads
BLOCK = 65_536  # vectors moved per step when converting (bounds the extra memory)
SEED = 1234


@contextmanager
def omp_threads(n: int) -> Iterator[None]:
    """Run FAISS on ``n`` OpenMP threads in this thread, restoring the previous setting."""
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(n)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def nlist_for(n: int) -> int:
    """Lists for ``n`` vectors: the power of two nearest sqrt(n), with >= 39 vectors per list."""
    ideal = 2 ** round(math.log2(max(math.sqrt(max(n, 1)), 1)))
    floor = 2 ** int(math.log2(max(n // 39, 1)))  # k-means needs ~39 points per centroid
    return max(MIN_NLIST, min(ideal, floor, MAX_NLIST))


class VectorIndex:
    """A FAISS index of L2-normalised float32 vectors keyed by int64 ids (chunk rowids).

    Scores are inner products (cosine for normalised vectors). ``kind`` says which index is
    in use; ``optimize`` changes it. Not thread-safe: callers serialise writes and reads.
    """

    def __init__(self, index: faiss.Index, *, approx_threshold: int = APPROX_THRESHOLD) -> None:
        self._index = index
        self.approx_threshold = approx_threshold
        self.kind = "ivf" if isinstance(index, faiss.IndexIVF) else "flat"
        self.last_optimize: dict[str, object] = {}  # what the last rebuild did and how long it took

    # -- making and loading --------------------------------------------------------------

    @classmethod
    def empty(cls, dimension: int, *, approx_threshold: int = APPROX_THRESHOLD) -> VectorIndex:
        """An empty exact (flat) index."""
        return cls(faiss.IndexIDMap2(faiss.IndexFlatIP(dimension)), approx_threshold=approx_threshold)

    @classmethod
    def read(cls, path: str | os.PathLike[str], *, approx_threshold: int = APPROX_THRESHOLD) -> VectorIndex:
        """Load from a file (FAISS reads it directly; the bytes are never held twice)."""
        try:
            index = faiss.read_index(str(path))
        except RuntimeError as exc:
            raise StoreError(f"{path}: unreadable FAISS index ({_reason(exc)}); rebuild it with `qabot index ARCHIVE --rebuild`") from None
        return cls._checked(index, source=str(path), approx_threshold=approx_threshold)

    @classmethod
    def load(cls, fh: BinaryIO, *, source: str, approx_threshold: int = APPROX_THRESHOLD) -> VectorIndex:
        """Load from an open binary file, streamed (peak memory: the index, as with :meth:`read`).

        The store reads its generation's file this way, through a file it opened with the
        generation: an open file stays readable after a writer has removed the generation.
        Streaming costs ~10 % more time than :meth:`read` (0.15 s against 0.13 s for 200k flat
        vectors here). Raises StoreError naming ``source`` when it is not an index qabot can use.
        """
        try:
            index = faiss.read_index(faiss.PyCallbackIOReader(fh.read))
        except (RuntimeError, ValueError, TypeError) as exc:
            raise StoreError(f"{source}: unreadable FAISS index ({_reason(exc)}); rebuild it with `qabot index ARCHIVE --rebuild`") from None
        return cls._checked(index, source=source, approx_threshold=approx_threshold)

    @classmethod
    def from_bytes(cls, data: bytes, *, source: str = "", approx_threshold: int = APPROX_THRESHOLD) -> VectorIndex:
        """Load serialised index bytes (``scripts/bench/bench_faiss.py`` measures this way of loading)."""
        # BytesIO shares the bytes' buffer: each read copies one block, never the whole index.
        return cls.load(io.BytesIO(data), source=source or "vector index", approx_threshold=approx_threshold)

    @classmethod
    def _checked(cls, index: faiss.Index, *, source: str, approx_threshold: int) -> VectorIndex:
        _require_supported(index, source or "vector index")
        if isinstance(index, faiss.IndexIVF) and index.direct_map.type != faiss.DirectMap.Hashtable:
            index.set_direct_map_type(faiss.DirectMap.Hashtable)  # remove/reconstruct by id
        return cls(index, approx_threshold=approx_threshold)

    def write(self, fh: BinaryIO) -> None:
        """Stream the serialised index into a binary file object (no copy held in memory)."""
        faiss.write_index(self._index, faiss.PyCallbackIOWriter(fh.write))

    # -- size ------------------------------------------------------------------------------

    @property
    def d(self) -> int:
        return int(self._index.d)

    @property
    def ntotal(self) -> int:
        return int(self._index.ntotal)

    @property
    def nlist(self) -> int:
        """Number of IVF lists (0 for flat)."""
        return int(self._index.nlist) if self.kind == "ivf" else 0

    @property
    def nprobe(self) -> int:
        """Lists scanned per query (0 for flat)."""
        return int(self._index.nprobe) if self.kind == "ivf" else 0

    def describe(self) -> str:
        """One line for `qabot stats` and logs, e.g. ``ivf IVF1024,IVFScalarQuantizer nprobe=16``."""
        if self.kind == "flat":
            return "flat (exact)"
        name = type(self._index).__name__.removeprefix("Index")
        return f"ivf IVF{self.nlist},{name} nprobe={self.nprobe}"

    # -- reading and writing --------------------------------------------------------------

    def add(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        """Add float32 vectors (n, d) under int64 ids; the ids must not be in the index yet."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        ids = np.ascontiguousarray(ids, dtype=np.int64).reshape(-1)
        if vectors.ndim != 2 or vectors.shape[1] != self.d or len(ids) != len(vectors):
            raise ValueError(f"expected vectors (n, {self.d}) and n ids, got {vectors.shape} and {ids.shape}")
        if len(ids):
            self._index.add_with_ids(vectors, ids)

    def remove(self, ids: np.ndarray) -> int:
        """Remove vectors by id; unknown ids are ignored. Returns the number removed."""
        ids = np.ascontiguousarray(ids, dtype=np.int64).reshape(-1)
        return int(self._index.remove_ids(ids)) if len(ids) and self.ntotal else 0

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids), each (n, k), best first; a missing result is id -1 with score -inf."""
        queries = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.d)
        n = len(queries)
        if k <= 0 or n == 0 or self.ntotal == 0:
            k = max(k, 0)
            return np.full((n, k), -np.inf, dtype=np.float32), np.full((n, k), -1, dtype=np.int64)
        threads = SEARCH_THREADS if n < BATCH_QUERIES else faiss.omp_get_max_threads()
        with omp_threads(threads):
            scores, ids = self._index.search(queries, k)
        scores[ids < 0] = -np.inf
        return scores, ids

    def reconstruct(self, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """The stored vectors (float16-rounded for ivf), one row per id; KeyError if unknown."""
        keys = np.ascontiguousarray(ids, dtype=np.int64).reshape(-1)
        if len(keys) == 0:
            return np.zeros((0, self.d), dtype=np.float32)
        try:
            return self._index.reconstruct_batch(keys)
        except RuntimeError:
            missing = np.setdiff1d(keys, self.ids())
            raise KeyError(int(missing[0]) if len(missing) else int(keys[0])) from None

    def ids(self) -> np.ndarray:
        """Every stored id (int64), in storage order."""
        return _stored_ids(self._index)

    # -- choosing the kind ----------------------------------------------------------------

    def optimize(self) -> bool:
        """Pick the index type for the current size; True when the index was rebuilt.

        flat -> ivf from ``approx_threshold`` vectors; ivf -> flat below half of it; ivf is
        retrained (new nlist, new nprobe) once it has grown ~5-8x past its training size.
        Costs one pass over the vectors: ~5 s at 100k and ~25-30 s at 1M on two shared cores
        (k-means on nlist*64 vectors, then moving every vector); meanwhile the old and the
        new index are both in memory (1.5 + 0.8 GiB when a 1M flat index converts).
        """
        n = self.ntotal
        started = time.perf_counter()
        if self.kind == "flat" and n >= max(self.approx_threshold, MIN_APPROX):
            target: faiss.Index = self._new_ivf(n)
        elif self.kind == "ivf" and n < self.approx_threshold // SHRINK_FACTOR:
            target = faiss.IndexIDMap2(faiss.IndexFlatIP(self.d))
        elif self.kind == "ivf" and nlist_for(n) >= REGROW_FACTOR * self.nlist:
            target = self._new_ivf(n)
        else:
            return False
        self._rebuild(target, train_s=time.perf_counter() - started)
        return True

    def _new_ivf(self, n: int) -> faiss.IndexIVF:
        nlist = nlist_for(n)
        index = faiss.index_factory(self.d, f"IVF{nlist},SQfp16", faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = SEED
        index.cp.spherical = True  # centroids on the unit sphere, as the vectors are
        index.train(self.reconstruct(self._sample_ids(nlist * TRAIN_PER_LIST)))
        index.set_direct_map_type(faiss.DirectMap.Hashtable)
        return index

    def _rebuild(self, target: faiss.Index, *, train_s: float) -> None:
        """Move every vector into ``target`` in blocks, tune nprobe, and switch to it."""
        started = time.perf_counter()
        all_ids = np.sort(self.ids())
        queries = self._tuning_queries() if isinstance(target, faiss.IndexIVF) else None
        best = _TopK(queries, 10) if queries is not None else None
        for start in range(0, len(all_ids), BLOCK):
            block_ids = all_ids[start : start + BLOCK]
            block = self.reconstruct(block_ids)
            target.add_with_ids(block, block_ids)
            if best is not None:
                best.update(block, block_ids)
        moved = time.perf_counter()
        if best is not None:
            target.nprobe = _tune_nprobe(target, queries, best.ids)
        old = self.describe()
        self._index = target
        self.kind = "ivf" if isinstance(target, faiss.IndexIVF) else "flat"
        self.last_optimize = {
            "from": old, "to": self.describe(), "vectors": len(all_ids), "train_s": round(train_s, 3),
            "move_s": round(moved - started, 3), "tune_s": round(time.perf_counter() - moved, 3),
        }
        log.info("vector index rebuilt: %s", self.last_optimize)

    def _sample_ids(self, m: int) -> np.ndarray:
        """A fixed-seed uniform sample of the stored ids (independent of storage order)."""
        all_ids = np.sort(self.ids())
        if m >= len(all_ids):
            return all_ids
        return np.sort(all_ids[np.random.default_rng(SEED).choice(len(all_ids), m, replace=False)])

    def _tuning_queries(self) -> np.ndarray:
        """Stored vectors nudged towards the difference of two others: near, never equal."""
        rng = np.random.default_rng(SEED + 1)
        picked = self.reconstruct(self._sample_ids(3 * TUNE_QUERIES))
        picked = picked[rng.permutation(len(picked))]
        m = len(picked) // 3
        base, noise = picked[:m], picked[m : 2 * m] - picked[2 * m : 3 * m]
        noise -= np.sum(noise * base, axis=1, keepdims=True) * base  # orthogonal to the base
        noise *= TUNE_NOISE / np.maximum(np.linalg.norm(noise, axis=1, keepdims=True), 1e-12)
        queries = base + noise
        return np.ascontiguousarray(queries / np.linalg.norm(queries, axis=1, keepdims=True), dtype=np.float32)


class _TopK:
    """Running exact top-k ids of the tuning queries over blocks of vectors (the ground truth)."""

    ROWS = 64  # queries scored at once: 64 x BLOCK floats = 16 MiB, whatever the index size

    def __init__(self, queries: np.ndarray, k: int) -> None:
        self.queries, self.k = queries, k
        self.scores = np.full((len(queries), 0), -np.inf, dtype=np.float32)
        self.ids = np.zeros((len(queries), 0), dtype=np.int64)

    def update(self, block: np.ndarray, block_ids: np.ndarray) -> None:
        scores, ids = [], []
        for start in range(0, len(self.queries), self.ROWS):
            rows = slice(start, start + self.ROWS)
            s = np.hstack([self.scores[rows], self.queries[rows] @ block.T])
            i = np.hstack([self.ids[rows], np.broadcast_to(block_ids, (len(s), len(block_ids)))])
            if s.shape[1] > self.k:
                keep = np.argpartition(-s, self.k - 1, axis=1)[:, : self.k]
                s, i = np.take_along_axis(s, keep, axis=1), np.take_along_axis(i, keep, axis=1)
            order = np.argsort(-s, axis=1, kind="stable")
            scores.append(np.take_along_axis(s, order, axis=1))
            ids.append(np.take_along_axis(i, order, axis=1))
        self.scores, self.ids = np.vstack(scores), np.vstack(ids)


def recall_at(found: np.ndarray, exact: np.ndarray, k: int = 10) -> float:
    """Mean share of the exact top-k ids that the approximate top-k found."""
    if len(exact) == 0:
        return 1.0
    hits = [len(np.intersect1d(f[:k], e[:k])) / max(1, np.count_nonzero(e[:k] >= 0)) for f, e in zip(found, exact)]
    return float(np.mean(hits))


def _tune_nprobe(index: faiss.IndexIVF, queries: np.ndarray, exact: np.ndarray) -> int:
    """The smallest nprobe whose recall@10 reaches TUNE_RECALL, computed without searching.

    A query finds a true neighbour once the neighbour's list is among the ``nprobe`` lists
    nearest the query; so rank every list for every query (one small search over the
    centroids) and count. Exact for the IVF part; float16 rounding is ignored.
    """
    nlist = int(index.nlist)
    _, order = index.quantizer.search(queries, nlist)  # lists by closeness, per query
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(nlist)[None, :], axis=1)
    needed = [
        rank[i, faiss.lo_listno(index.direct_map.get(int(neighbour)))]
        for i, row in enumerate(exact) for neighbour in row if neighbour >= 0
    ]  # probes needed to find each true neighbour
    if not needed:
        return 1
    counts = np.cumsum(np.bincount(needed, minlength=nlist))  # counts[p-1]: found with p probes
    nprobe = int(np.argmax(counts >= TUNE_RECALL * len(needed))) + 1
    log.info("nprobe %d of %d lists reaches recall@10 >= %.2f on %d tuning queries", nprobe, nlist, TUNE_RECALL, len(queries))
    return nprobe


@dataclass(frozen=True, eq=False)
class VectorFileInfo:
    """What a vector file holds, read by :func:`peek` without loading the vectors."""

    kind: str  # "flat" or "ivf", as VectorIndex.kind
    d: int
    ntotal: int
    ids: np.ndarray  # int64, in storage order


def peek(path: str | os.PathLike[str], *, source: str | None = None) -> VectorFileInfo:
    """Kind, dimension and ids of a vector file, without reading the vectors themselves.

    FAISS maps the file read-only (``IO_FLAG_MMAP_IFC | IO_FLAG_READ_ONLY``; ``IO_FLAG_MMAP``
    alone maps ivf lists only), touching just the header and the ids. 200k x 384 here, full
    read against this: flat 0.16 s / +305 MiB RSS vs 0.012 s / +14 MiB; ivf 0.07 s / +160 MiB
    vs 0.016 s / +48 MiB. A truncated file raises StoreError naming ``source`` (default: ``path``).
    """
    where = source or str(path)
    try:
        index = faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY)
    except RuntimeError as exc:
        raise StoreError(f"{where}: unreadable FAISS index ({_reason(exc)}); rebuild it with `qabot index ARCHIVE --rebuild`") from None
    _require_supported(index, where)
    kind = "ivf" if isinstance(index, faiss.IndexIVF) else "flat"
    # _stored_ids copies: nothing returned points into the mapping, which goes with ``index``.
    return VectorFileInfo(kind=kind, d=int(index.d), ntotal=int(index.ntotal), ids=_stored_ids(index))


def _require_supported(index: faiss.Index, where: str) -> None:
    """StoreError unless ``index`` is one of the two kinds qabot writes (see the module docstring)."""
    if index.metric_type != faiss.METRIC_INNER_PRODUCT:
        raise StoreError(f"{where}: FAISS index does not use inner product; rebuild the index")
    if isinstance(index, faiss.IndexIVF):
        return
    if not (isinstance(index, faiss.IndexIDMap2) and isinstance(faiss.downcast_index(index.index), faiss.IndexFlat)):
        raise StoreError(f"{where}: unsupported FAISS index type {type(index).__name__}; rebuild the index")


def _stored_ids(index: faiss.Index) -> np.ndarray:
    """Every id stored in a flat (IndexIDMap2) or ivf index, copied out, in storage order."""
    if not isinstance(index, faiss.IndexIVF):
        return faiss.vector_to_array(index.id_map).astype(np.int64, copy=False)
    invlists = index.invlists
    parts = []
    for list_no in range(invlists.nlist):
        size = invlists.list_size(list_no)
        if size:
            parts.append(faiss.rev_swig_ptr(invlists.get_ids(list_no), size).copy())
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def _reason(exc: BaseException) -> str:
    """FAISS's message without its C++ location prefix ("Error in ... at file:line: ")."""
    text = " ".join(str(exc).split())
    return text.rsplit(": Error: ", 1)[-1].rsplit(".cpp:", 1)[-1].lstrip("0123456789: ") or type(exc).__name__
