"""A damaged index is refused with a message or repaired: never a wrong answer, never a traceback.

Each case damages one file of a published index (the live generation's ``qabot.db`` or
``vectors.faiss``, or ``manifest.json``): random garbage, truncation, single-bit flips and
64-byte flips spread over the file. Then, for each case:

- a reader (``Store.open`` + ``Retriever.ask``) either refuses with a StoreError naming a file
  of the index, or answers exactly as the sound index did;
- ``check_index`` never raises, and reports every change to the database or the vector file;
- ``qabot index`` over it (no flags) refuses and leaves every file as it was, or (a harmless
  change) leaves a sound index; ``--repair`` leaves a sound index that answers as before.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from qabot.answering.retriever import Retriever
from qabot.errors import IndexMismatchError, StoreError
from qabot.frontends.cli import cli
from qabot.indexer import build_index
from qabot.store import Store, read_manifest
from qabot.store.backends import check_index
from qabot.store.manifest import DB_NAME, FAISS_NAME, MANIFEST_NAME
from tests.fakes import HashEmbedder

from .archives import article_text, write_archive
from .tiny_models import build_tiny_model

ARTICLES = range(12)
CHUNK_TOKENS = 60
QUESTION = article_text(7).split(". ")[3]  # a sentence of article 7, as a question


def _build(archive: Path, folder: Path, **options: object) -> None:
    build_index(archive, folder, embedder=HashEmbedder(), chunk_tokens=CHUNK_TOKENS, **options)


def _answer(folder: Path) -> tuple[str, list[str]]:
    with Retriever(Store.open(folder, model="hash-test"), HashEmbedder()) as retriever:
        answer = retriever.ask(QUESTION)
    return answer.sentence, [p.article_id for p in answer.passages]


@pytest.fixture(scope="module")
def sound(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, tuple[str, list[str]]]:
    root = tmp_path_factory.mktemp("damage")
    archive = write_archive(root / "archive.jsonl", ARTICLES)
    _build(archive, root / "ix")
    expected = _answer(root / "ix")
    assert expected[1][0] == "art-7"
    return archive, root / "ix", expected


def _target(folder: Path, name: str) -> Path:
    if name == MANIFEST_NAME:
        return folder / MANIFEST_NAME
    return folder / read_manifest(folder).generation / name


def _files(folder: Path) -> dict[str, bytes]:
    """Every file of the index folder (SQLite's -wal/-shm and the writer's lock aside)."""
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.name.endswith(("-wal", "-shm")) and p.name != ".lock"
    }


def _damage(path: Path, kind: str) -> None:
    data = bytearray(path.read_bytes())
    rng = random.Random(f"{path.name}:{kind}")
    if kind == "garbage":
        data = bytearray(rng.randbytes(len(data)))
    elif kind == "empty":
        data = bytearray()
    elif kind == "truncated-8k":
        data = data[: min(8192, len(data) // 2)]
    elif kind == "truncated-tail":
        data = data[: len(data) - 7]
    elif kind.startswith("bit@"):  # one bit, at k/8 of the file
        offset = len(data) * int(kind[4:]) // 8
        data[offset] ^= 0x01
    elif kind.startswith("block@"):  # 64 bytes, at k/4 of the file
        offset = min(len(data) * int(kind[6:]) // 4, max(0, len(data) - 64))
        for i in range(offset, min(offset + 64, len(data))):
            data[i] ^= 0xFF
    path.write_bytes(bytes(data))


KINDS = ["garbage", "empty", "truncated-8k", "truncated-tail", *(f"bit@{k}" for k in range(8)), *(f"block@{k}" for k in range(4))]
CASES = [pytest.param(name, kind, id=f"{name}-{kind}") for name in (DB_NAME, FAISS_NAME, MANIFEST_NAME) for kind in KINDS]


@pytest.mark.parametrize(("name", "kind"), CASES)
def test_damage_is_refused_or_repaired_never_a_wrong_answer(sound, tmp_path: Path, name: str, kind: str) -> None:
    archive, built, expected = sound
    folder = tmp_path / "ix"
    shutil.copytree(built, folder)
    _damage(_target(folder, name), kind)
    before = _files(folder)

    # A reader: refused with a message naming a file of the index, or the sound answer.
    try:
        answered = _answer(folder)
    except StoreError as exc:
        assert str(folder) in str(exc), exc
        reader_refused = True
    else:
        assert answered == expected
        reader_refused = False

    # The check: never a traceback; any change to the data files is found.
    report = check_index(folder)
    if name != MANIFEST_NAME:
        assert not report.ok, report
        assert any("--repair" in note for note in report.notes), report.notes
    elif report.ok:
        assert not reader_refused or "hash-test" not in json.dumps(report.to_dict())

    # A plain update: refused without writing anything, or the index stays sound.
    try:
        _build(archive, folder)
    except StoreError as exc:
        assert "--repair" in str(exc) or isinstance(exc, IndexMismatchError), exc
        assert _files(folder) == before, "a refused update changed the index"
    else:
        assert check_index(folder).ok and _answer(folder) == expected

    # --repair (a changed model or chunk setting in the manifest needs --rebuild): sound again.
    try:
        _build(archive, folder, repair=True)
    except IndexMismatchError:
        _build(archive, folder, rebuild=True)
    assert check_index(folder).ok
    assert _answer(folder) == expected


def test_readers_never_change_a_published_generation(sound, tmp_path: Path) -> None:
    _, built, expected = sound
    folder = tmp_path / "ix"
    shutil.copytree(built, folder)
    before = _files(folder)
    for _ in range(3):
        assert _answer(folder) == expected
    with Store.open(folder) as store:
        store.keyword_search('"Artikel"', 5)
        store.load_vectors(sentences=True)
    assert check_index(folder).ok
    assert _files(folder) == before


def test_checksums_are_recorded_when_a_generation_is_published(sound) -> None:
    _, built, _ = sound
    manifest = read_manifest(built)
    assert sorted(manifest.checksums) == [DB_NAME, FAISS_NAME]
    assert all(len(v) == 64 for v in manifest.checksums.values())


def _without_checksums(folder: Path) -> None:
    """The manifest as qabot wrote it before checksums were recorded."""
    path = folder / MANIFEST_NAME
    data = json.loads(path.read_text())
    del data["checksums"]
    path.write_text(json.dumps(data))


def test_a_damaged_vector_in_an_index_without_checksums_is_found_by_its_norm(sound, tmp_path: Path) -> None:
    # 64 bytes flipped in the middle of vectors.faiss gave one vector of norm 2372 that won every question.
    _, built, _ = sound
    folder = tmp_path / "ix"
    shutil.copytree(built, folder)
    _without_checksums(folder)
    assert check_index(folder).ok
    _damage(_target(folder, FAISS_NAME), "block@2")
    with pytest.raises(StoreError, match="not unit length"):
        _answer(folder)
    report = check_index(folder)
    assert any("not unit length" in p for p in report.problems), report.problems


def test_a_damaged_sentence_vector_is_refused(sound, tmp_path: Path) -> None:
    import sqlite3

    _, built, _ = sound
    folder = tmp_path / "ix"
    shutil.copytree(built, folder)
    _without_checksums(folder)
    db_path = _target(folder, DB_NAME)
    with sqlite3.connect(db_path) as db:
        (rowid, blob), = db.execute(  # a sentence of the article the question asks about
            "select s.rowid, s.vector from sentences s where s.article_id = 'art-7' limit 1 offset 3").fetchall()
        vector = np.frombuffer(blob, dtype=np.float16).copy()  # stored as float16
        vector[3] = 80.0
        db.execute("update sentences set vector = ? where rowid = ?", [vector.tobytes(), rowid])
    with pytest.raises(StoreError, match=r"sentence vectors.*not unit length"):
        _answer(folder)
    assert any("sentence vectors" in p for p in check_index(folder).problems)


def test_an_emptied_database_is_refused_and_never_rebuilt_in_place(sound, tmp_path: Path) -> None:
    # `truncate -s 0 qabot.db`, then a plain `qabot index`, said "indexed 6 articles" and left 30 duplicated FAISS ids.
    archive, built, _ = sound
    folder = tmp_path / "ix"
    shutil.copytree(built, folder)
    _without_checksums(folder)  # the size check, not the checksum, must catch it
    _target(folder, DB_NAME).write_bytes(b"")
    with pytest.raises(StoreError, match="empty"):
        _build(archive, folder)
    assert _target(folder, DB_NAME).stat().st_size == 0
    with pytest.raises(StoreError, match="empty"):
        _answer(folder)


# -- the command line ---------------------------------------------------------------------


@pytest.fixture
def cli_env(cli_env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """conftest's ``cli_env`` with this module's chunk size (the sound index was built with it)."""
    monkeypatch.setenv("QABOT_CHUNK_TOKENS", str(CHUNK_TOKENS))
    return cli_env


def test_the_cli_names_the_damage_and_the_repair_in_one_line(sound, cli_env: Path) -> None:
    archive, built, _ = sound
    folder = cli_env / "ix"
    shutil.copytree(built, folder)
    _damage(_target(folder, DB_NAME), "block@2")
    runner = CliRunner()
    for args in (["index", str(archive)], ["delete", "art-3"]):
        result = runner.invoke(cli, [*args, "--index", str(folder)])
        _assert_one_error_line(result, DB_NAME)
    checked = runner.invoke(cli, ["check", "--index", str(folder)])
    assert checked.exit_code == 1 and isinstance(checked.exception, SystemExit), checked.output
    assert "PROBLEMS" in checked.stdout and "damaged" in checked.stdout and "--repair" in checked.stdout
    repaired = runner.invoke(cli, ["index", str(archive), "--index", str(folder), "--repair"])
    assert repaired.exit_code == 0, repaired.output
    assert runner.invoke(cli, ["check", "--index", str(folder)]).exit_code == 0


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny-model")


@pytest.mark.parametrize("name", [DB_NAME, FAISS_NAME])
def test_ask_over_a_damaged_index_is_one_error_line(tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    # A real (tiny) model behind the CLI: `qabot ask` ended in a traceback (DatabaseError) or a wrong answer.
    monkeypatch.chdir(tmp_path)
    for key in list(os.environ):
        if key.startswith("QABOT_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("QABOT_MODEL", str(tiny_model))
    folder = tmp_path / "ix"
    runner = CliRunner()
    assert runner.invoke(cli, ["index", "--sample", "--index", str(folder)]).exit_code == 0
    assert runner.invoke(cli, ["ask", "Wann landet Putin in Alaska?", "--index", str(folder)]).exit_code == 0
    _damage(_target(folder, name), "block@2")
    _assert_one_error_line(runner.invoke(cli, ["ask", "Wann landet Putin in Alaska?", "--index", str(folder)]), name)


def _assert_one_error_line(result, name: str) -> None:
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), (result.output, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert name in lines[0] and "--repair" in lines[0], lines[0]


def test_a_manifest_that_is_a_folder_is_refused_with_its_name(sound, cli_env: Path) -> None:
    archive, _, _ = sound
    folder = cli_env / "ix"
    (folder / MANIFEST_NAME).mkdir(parents=True)
    result = CliRunner().invoke(cli, ["index", str(archive), "--index", str(folder)])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert f"{folder / MANIFEST_NAME}: not a file" in result.stderr


def test_a_damaged_manifest_is_set_aside_by_repair(sound, tmp_path: Path) -> None:
    archive, built, expected = sound
    folder = tmp_path / "ix"
    shutil.copytree(built, folder)
    (folder / MANIFEST_NAME).write_text("{not json")
    with pytest.raises(StoreError, match="--repair"):
        _build(archive, folder)
    _build(archive, folder, repair=True)
    assert (folder / f"{MANIFEST_NAME}.damaged").read_text() == "{not json"
    assert check_index(folder).ok and _answer(folder) == expected


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_an_archive_that_is_not_a_file_or_folder_is_refused_before_anything_is_written(cli_env: Path, kind: str) -> None:
    # `qabot index /dev/null` first said "progress saved … resume", then failed.
    if kind == "fifo":
        archive = cli_env / "pipe"
        os.mkfifo(archive)
    else:
        archive = Path("/dev/null")
        assert stat.S_ISCHR(archive.stat().st_mode)
    folder = cli_env / "ix"
    result = CliRunner().invoke(cli, ["index", str(archive), "--index", str(folder)])
    assert result.exit_code == 1, result.output
    assert result.stderr.strip() == f"error: {archive}: not a regular file or folder (a device, FIFO or socket)"
    assert not folder.exists()


def test_a_lock_or_journal_that_cannot_be_opened_is_one_error_line(sound, cli_env: Path) -> None:
    # A read-only index folder gave `PermissionError: .lock` (writers) and `OperationalError` (readers).
    # Running as root here, permissions cannot be taken away: a folder in the file's place fails the same calls.
    archive, built, _ = sound
    folder = cli_env / "ix"
    shutil.copytree(built, folder)
    (folder / ".lock").unlink(missing_ok=True)
    (folder / ".lock").mkdir()
    result = CliRunner().invoke(cli, ["index", str(archive), "--index", str(folder)])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert result.stderr.startswith(f"error: {folder / '.lock'}: cannot take the writer lock (Is a directory)")
    data_dir = _target(folder, DB_NAME).parent
    (data_dir / f"{DB_NAME}-wal").mkdir()
    with pytest.raises(StoreError, match=r"qabot\.db: cannot open or read it \(.*\); check that this user may read"):
        _answer(folder)
