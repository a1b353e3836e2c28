"""Where built-in data sets live on disk, and how they get there (download + checksums).

The cache folder is, in order of precedence: the ``cache_dir`` argument, the ``MTLKIT_DATA``
environment variable, or ``~/.cache/mtlkit``. Downloads use :mod:`urllib` (any URL it opens,
``file://`` included), are written atomically and are checked with SHA-256:

- against a *pinned* digest where the project could verify one, else
- against a digest *recorded at first download* (``<file>.sha256`` next to the file), which
  detects a file corrupted or changed in the cache since then.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from tqdm.auto import tqdm

from mtlkit.errors import DataError
from mtlkit.files import atomic_write_text

ENV_VAR = "MTLKIT_DATA"
CHUNK = 1 << 20


def cache_root(cache_dir: str | Path | None = None) -> Path:
    """The cache folder: ``cache_dir``, else ``$MTLKIT_DATA``, else ``~/.cache/mtlkit``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get(ENV_VAR)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "mtlkit"


def sha256_of(path: Path) -> str:
    """SHA-256 hex digest of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(url: str, dest: Path, progress: bool = True) -> None:
    """Copy ``url`` to ``dest`` with a progress bar (tests replace this or use ``file://``)."""
    with urllib.request.urlopen(url, timeout=60) as response, open(dest, "wb") as out:
        total = int(response.headers.get("Content-Length") or 0) or None
        bar = tqdm(total=total, unit="B", unit_scale=True, desc=dest.name, disable=not progress)
        for chunk in iter(lambda: response.read(CHUNK), b""):
            out.write(chunk)
            bar.update(len(chunk))
        bar.close()


def _record_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def verify(path: Path, sha256: str | None = None) -> str:
    """Check a cached file against the pinned digest, or the one recorded when it arrived.

    A file without a record (e.g. placed by hand) is trusted once and its digest recorded.
    """
    digest = sha256_of(path)
    record = _record_path(path)
    expected = sha256 or (record.read_text().strip() if record.is_file() else None)
    if expected is not None and digest != expected:
        kind = "the published checksum" if sha256 else f"the checksum recorded in {record}"
        raise DataError(
            f"{path} does not match {kind} (sha256 {digest}, expected {expected}): the file "
            f"is corrupt or was changed. Delete it (and {record.name}) to download it again."
        )
    if not record.is_file():
        atomic_write_text(record, digest + "\n")
    return digest


def download(
    url: str,
    dest: Path,
    *,
    what: str,
    sha256: str | None = None,
    progress: bool = True,
) -> Path:
    """``dest``, downloaded from ``url`` unless already cached, checksum-verified either way.

    A failed download (offline, HTTP error...) raises :class:`DataError` saying where to put
    a copy of the file by hand.
    """
    if dest.is_file():
        verify(dest, sha256)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        try:
            fetch(url, tmp, progress)
        except (urllib.error.URLError, OSError, TimeoutError, ValueError) as err:
            reason = getattr(err, "reason", None) or err
            raise DataError(
                f"Could not download {what} from {url} ({reason}). If this machine is offline, "
                f"download that file on another machine and put it at {dest}, or pass "
                "path=... pointing to your copy."
            ) from err
        digest = sha256_of(tmp)
        if sha256 is not None and digest != sha256:
            raise DataError(
                f"The download of {what} from {url} has sha256 {digest}, expected {sha256}; "
                "it is corrupt or the file changed upstream. Try again, or put a good copy at "
                f"{dest}."
            )
        os.replace(tmp, dest)
        atomic_write_text(_record_path(dest), digest + "\n")
    finally:
        tmp.unlink(missing_ok=True)
    return dest
