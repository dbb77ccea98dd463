"""``python -m ingest``: exit codes and messages of a refused publish, and one ingest at a time (the lock)."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

import ingest.__main__ as cli
from core.index_versions import active_name, set_active
from core.vectorstore import open_client
from fakes import CATALOGUE, HashEmbedder, write_catalogue
from ingest.lock import FileLock, IngestLockBusyError, IngestLockError, held, make_lock

ROOT = Path(__file__).resolve().parents[3]
BASE = "catalogue"


@pytest.fixture
def env(tmp_path, monkeypatch):
    """The CLI on a temporary index with the hash embedder and the file lock; returns (catalogue, chroma path)."""
    chroma = tmp_path / "chroma"
    monkeypatch.setenv("CHROMA_PATH", str(chroma))
    monkeypatch.setenv("CHROMA_COLLECTION", BASE)
    monkeypatch.setenv("INGEST_LOCK", "auto")  # no DATABASE_URL / REDIS_URL: the file lock
    monkeypatch.setenv("CHUNK_TOKENS", "200")
    for name in ("CHROMA_URL", "REDIS_URL", "DATABASE_URL", "INGEST_LOCK_WAIT_S", "INGEST_MAX_DELETE_SHARE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(cli, "make_embedder", lambda *a, **k: HashEmbedder())
    return write_catalogue(tmp_path / "c"), chroma


def test_a_malformed_file_exits_3_before_the_switch_and_names_it(env, capsys):
    root, chroma = env
    assert cli.main(["--dir", str(root)]) == 0
    before = active_name(open_client(chroma), BASE)
    (root / "products/autobox.md").write_text("---\nid: purrclean-autobox-9\nprice_eur: [\n---\nTekst\n")
    capsys.readouterr()
    assert cli.main(["--dir", str(root)]) == cli.REFUSED == 3
    err = capsys.readouterr().err
    assert "publish refused (failed_files)" in err and f"{root / 'products/autobox.md'}: " in err
    assert f"active index version: {before} (unchanged, still served)" in err
    assert active_name(open_client(chroma), BASE) == before


def test_an_empty_folder_exits_3_and_a_big_deletion_needs_the_flag(env, tmp_path, capsys):
    root, _ = env
    assert cli.main(["--dir", str(root)]) == 0
    (tmp_path / "mnt").mkdir()
    assert cli.main(["--dir", str(tmp_path / "mnt")]) == 3
    assert "publish refused (empty)" in capsys.readouterr().err
    for rel in list(CATALOGUE)[:3]:  # 3 of 4 documents
        (root / rel).unlink()
    assert cli.main(["--dir", str(root)]) == 3
    assert "publish refused (deletions)" in capsys.readouterr().err
    assert cli.main(["--dir", str(root), "--allow-deletions"]) == 0
    assert "deleted 3" in capsys.readouterr().out


def test_a_broken_pointer_stops_the_ingest_and_rebuild_repairs_it(env, capsys):
    root, chroma = env
    assert cli.main(["--dir", str(root)]) == 0
    set_active(open_client(chroma), BASE, f"{BASE}__v20000101T000000000000")  # names a version that is gone
    assert cli.main(["--dir", str(root)]) == cli.BROKEN_POINTER
    assert "nothing was published" in capsys.readouterr().err
    assert cli.main(["--dir", str(root), "--rebuild"]) == 0
    assert active_name(open_client(chroma), BASE) != f"{BASE}__v20000101T000000000000"


def test_two_ingests_at_once_the_second_is_refused_by_the_lock(env, monkeypatch, capsys):
    root, chroma = env
    entered, release = threading.Event(), threading.Event()

    class Slow(HashEmbedder):
        def embed_passages(self, texts):
            entered.set()
            assert release.wait(30)
            return super().embed_passages(texts)

    monkeypatch.setattr(cli, "make_embedder", lambda *a, **k: Slow())
    codes: list[int] = []
    first = threading.Thread(target=lambda: codes.append(cli.main(["--dir", str(root)])))
    first.start()
    try:
        assert entered.wait(30), "the first ingest never started embedding"
        assert cli.main(["--dir", str(root)]) == cli.LOCKED == 4
    finally:
        release.set()
        first.join(30)
    assert codes == [0]
    err = capsys.readouterr().err
    assert "another ingest is running (file lock" in err and f"{chroma}.{BASE}.ingest.lock" in err
    assert cli.main(["--dir", str(root)]) == 0  # the lock is free again


def test_the_file_lock_holds_across_processes(env):
    root, chroma = env
    code = (
        "import sys, pathlib; from ingest.lock import held, make_lock\n"
        f"with held(make_lock('file', name={BASE!r}, chroma_path=pathlib.Path({str(chroma)!r}))):\n"
        "    print('locked', flush=True); sys.stdin.read()\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        assert cli.main(["--dir", str(root)]) == cli.LOCKED
        lock = make_lock("file", name=BASE, chroma_path=chroma)
        with pytest.raises(IngestLockBusyError, match=r"held by pid \d+"), held(lock, wait_s=0.6):  # waits, gives up
            pass
    finally:
        holder.communicate("", timeout=30)
    with held(FileLock(chroma.parent / f"{chroma.name}.{BASE}.ingest.lock")):  # freed when the process ended
        pass


def test_the_lock_kind_follows_the_configuration(tmp_path):
    pg = make_lock("auto", name="c", chroma_path=tmp_path, database_url="postgresql://u@h/db", redis_url="redis://r")
    assert pg.where == "PostgreSQL advisory lock 'shop-assistant-ingest:c'"
    assert make_lock("auto", name="c", chroma_path=tmp_path, redis_url="redis://r").where == "Redis lock 'c'"
    assert make_lock("auto", name="c", chroma_path=tmp_path / "chroma").where.startswith("file lock")
    with pytest.raises(ValueError, match="DATABASE_URL"):
        make_lock("postgres", name="c", chroma_path=tmp_path)
    with pytest.raises(ValueError, match="REDIS_URL"):
        make_lock("redis", name="c", chroma_path=tmp_path)
    down = make_lock("postgres", name="c", chroma_path=tmp_path, database_url="postgresql://x@127.0.0.1:1/db")
    with pytest.raises(IngestLockError, match="could not take the PostgreSQL advisory lock"), held(down):
        pass  # a shared lock whose store is down stops the ingest: never an unlocked publish
