"""Downloads driven by file:// URLs or a replaced fetch (no network in tests)."""

import hashlib
import io
import tarfile
import urllib.error
from pathlib import Path

import pytest

from mtlkit import DataError
from mtlkit.datasets import cache, census
from mtlkit.datasets.cache import cache_root, download, sha256_of


def _archive(folder: Path, make_census) -> tuple[Path, str]:
    """A census.tar.gz laid out like UCI's; returns it and the test split's content digest."""
    src = folder / "src"
    make_census(src / "census-income.data", 40, seed=1)
    make_census(src / "census-income.test", 20, seed=2)
    archive = folder / "census.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name in ("census-income.data", "census-income.test"):
            tar.add(src / name, arcname=f"census-income-mld/{name}")
        info = tarfile.TarInfo("census-income-mld/census-income.names")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"names"))
    digest = hashlib.sha256((src / "census-income.test").read_bytes()).hexdigest()
    return archive, digest


@pytest.fixture
def served(tmp_path, make_census, monkeypatch):
    """The census archive behind a file:// URL, with the pin set to its test split."""
    archive, digest = _archive(tmp_path, make_census)
    monkeypatch.setattr(census, "URL", archive.as_uri())
    monkeypatch.setattr(census, "TEST_SPLIT_SHA256", digest)
    return archive


def test_first_use_downloads_verifies_extracts_and_records(tmp_path, served):
    cache_dir = tmp_path / "cache"
    table = census.load_census(cache_dir=cache_dir, progress=False)
    assert len(table) == 60
    assert sorted(set(table.source)) == ["census-income.data", "census-income.test"]
    folder = cache_dir / "census-income"
    record = (folder / "census.tar.gz.sha256").read_text().strip()
    assert record == sha256_of(served)
    assert len(census.load_census(cache_dir=cache_dir, split="test", progress=False)) == 20


def test_the_cache_is_reused_without_downloading(tmp_path, served, monkeypatch):
    cache_dir = tmp_path / "cache"
    census.load_census(cache_dir=cache_dir, progress=False)

    def no_network(url, dest, progress=True):
        raise AssertionError("fetched again")

    monkeypatch.setattr(cache, "fetch", no_network)
    assert len(census.load_census(cache_dir=cache_dir, progress=False)) == 60


def test_a_corrupted_cached_archive_is_detected(tmp_path, served):
    cache_dir = tmp_path / "cache"
    census.load_census(cache_dir=cache_dir, progress=False)
    folder = cache_dir / "census-income"
    (folder / "census-income.data").unlink()  # forces a re-extraction from the archive
    with open(folder / "census.tar.gz", "ab") as fh:
        fh.write(b"garbage")
    with pytest.raises(DataError, match="recorded.*corrupt or was changed.*Delete it"):
        census.load_census(cache_dir=cache_dir, progress=False)


def test_a_test_split_that_differs_from_the_pinned_one_is_rejected(tmp_path, served, monkeypatch):
    monkeypatch.setattr(census, "TEST_SPLIT_SHA256", "0" * 64)
    with pytest.raises(DataError, match="does not match the published test split"):
        census.load_census(cache_dir=tmp_path / "cache", progress=False)


def test_offline_says_where_to_put_the_file(tmp_path, monkeypatch):
    def offline(url, dest, progress=True):
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(cache, "fetch", offline)
    cache_dir = tmp_path / "cache"
    with pytest.raises(DataError) as info:
        census.load_census(cache_dir=cache_dir, progress=False)
    message = str(info.value)
    assert "no route to host" in message and census.URL in message
    assert str(cache_dir / "census-income" / "census.tar.gz") in message and "path=" in message
    assert not list((cache_dir / "census-income").iterdir())  # no half-written file left


def test_an_unreachable_file_url_is_the_same_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(census, "URL", (tmp_path / "missing.tar.gz").as_uri())
    with pytest.raises(DataError, match="Could not download"):
        census.load_census(cache_dir=tmp_path / "cache", progress=False)


def test_a_local_archive_path_is_extracted_without_downloading(tmp_path, served, monkeypatch):
    monkeypatch.setattr(census, "URL", "http://invalid.invalid/census.tar.gz")
    table = census.load_census(served, cache_dir=tmp_path / "cache", progress=False)
    assert len(table) == 60


def test_pinned_checksum_mismatch_keeps_nothing(tmp_path):
    src = tmp_path / "file.txt"
    src.write_text("hello")
    dest = tmp_path / "cache" / "file.txt"
    with pytest.raises(DataError, match="expected 0000"):
        download(src.as_uri(), dest, what="a file", sha256="0" * 64, progress=False)
    assert not dest.exists()
    good = hashlib.sha256(b"hello").hexdigest()
    assert download(src.as_uri(), dest, what="a file", sha256=good, progress=False) == dest


def test_cache_folder_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MTLKIT_DATA", raising=False)
    assert cache_root() == tmp_path / "home" / ".cache" / "mtlkit"
    monkeypatch.setenv("MTLKIT_DATA", str(tmp_path / "env"))
    assert cache_root() == tmp_path / "env"
    assert cache_root(tmp_path / "arg") == tmp_path / "arg"
