"""Fetch R3M checkpoints into skillgym's cache (``skillgym download r3m-50``).

The download goes to a temporary file next to ``dest`` (``.<name>.*.part``) and is moved into place only when
the byte count matches the server's ``Content-Length`` (and the sha256, when known) and the file
reads as an R3M checkpoint; on any failure the partial file is removed, so a later run never
mistakes a truncated download for weights.

Example:
    >>> path = download_weights("r3m-50")  # doctest: +SKIP
    >>> path = download_weights("r3m-18", url="http://127.0.0.1:8000/r3m_18.pt", dest="/tmp/r.pt")  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from skillgym import outputs

R3M_URL = "https://pytorch.s3.amazonaws.com/models/rl/r3m/r3m_{size}.pt"
DOWNLOADABLE = {f"r3m-{s}": R3M_URL.format(size=s) for s in (18, 34, 50)}
# sha256 of the published files, where we have verified them; None means "size check only".
KNOWN_SHA256: dict[str, str | None] = {name: None for name in DOWNLOADABLE}


class DownloadError(RuntimeError):
    """A download failed or produced a file that is not what was asked for."""


def default_cache_dir() -> Path:
    """``$SKILLGYM_CACHE/r3m`` or ``~/.cache/skillgym/r3m``."""
    root = os.environ.get("SKILLGYM_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "skillgym") / "r3m"


def default_destination(name: str) -> Path:
    """Where :func:`download_weights` writes ``name`` by default, e.g. ``r3m-50`` -> ``<cache>/r3m_50.pt``."""
    return default_cache_dir() / f"{name.replace('-', '_')}.pt"


def download_weights(
    name: str,
    url: str | None = None,
    dest: str | os.PathLike | None = None,
    sha256: str | None = None,
    expected_size: int | None = None,
    progress: bool = True,
    timeout: float = 60.0,
    overwrite: bool = False,
) -> Path:
    """Download the checkpoint ``name`` (``r3m-18``, ``r3m-34``, ``r3m-50``) and return its path.

    Args:
        name: which checkpoint.
        url: override the source (mirrors, tests).
        dest: override the destination file (default: :func:`default_destination`).
        sha256: expected hex digest; default: the known digest for ``name`` if any.
        expected_size: expected byte count, checked on top of ``Content-Length``.
        progress: show a tqdm progress bar.
        overwrite: download again even if ``dest`` exists.
    """
    if name not in DOWNLOADABLE:
        raise DownloadError(f"unknown checkpoint {name!r}; choose one of {', '.join(sorted(DOWNLOADABLE))}")
    url = url or DOWNLOADABLE[name]
    dest = Path(dest).expanduser() if dest else default_destination(name)
    sha256 = (sha256 or KNOWN_SHA256.get(name) or "").lower() or None
    if dest.is_dir():
        raise DownloadError(f"{dest} is a folder; pass --dest the path of the file to write")
    if dest.exists():
        why = _not_a_checkpoint(dest, name)
        if why:  # a file skillgym did not write: downloads land under a temporary name, renamed once valid
            raise DownloadError(f"{dest} exists and {why}; skillgym never replaces files it did not write: "
                                "move it or pick another --dest")
        if not overwrite:
            return dest
    outputs.check_creatable(dest, "--dest")
    dest.parent.mkdir(parents=True, exist_ok=True)
    handle, name_part = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    os.close(handle)
    part = Path(name_part)
    try:
        _fetch(url, part, sha256, expected_size, progress, timeout)
        why = _not_a_checkpoint(part, name)
        if why:
            raise DownloadError(f"{url} did not serve a valid {name} checkpoint: the file {why}; nothing was kept")
        os.replace(part, dest)
    finally:
        part.unlink(missing_ok=True)
    return dest


def _fetch(url: str, part: Path, sha256: str | None, expected_size: int | None, progress: bool, timeout: float) -> None:
    from tqdm.auto import tqdm

    digest, received = hashlib.sha256(), 0
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            header = response.headers.get("Content-Length")
            total = int(header) if header is not None else None
            with open(part, "wb") as f, tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024,
                                              desc=f"download {url.rsplit('/', 1)[-1]}", disable=not progress) as bar:
                while chunk := response.read(1 << 16):
                    f.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
    except http.client.IncompleteRead as e:
        raise DownloadError(f"{url}: the connection closed after {received + len(e.partial)} bytes; "
                            "the download is incomplete, try again") from e
    except (urllib.error.URLError, OSError) as e:
        raise DownloadError(f"cannot download {url}: {e}. Check the network, or pass --url to a mirror") from e
    if total is not None and received != total:
        raise DownloadError(f"{url}: incomplete download, received {received} of the {total} bytes announced; try again")
    if expected_size is not None and received != expected_size:
        raise DownloadError(f"{url}: received {received} bytes, expected {expected_size}")
    if sha256 and digest.hexdigest() != sha256:
        raise DownloadError(f"{url}: sha256 {digest.hexdigest()} != expected {sha256}; the file is corrupt")


def _not_a_checkpoint(path: Path, name: str) -> str | None:
    """Why ``path`` is not a valid ``name`` checkpoint ("is not ..."), or None if it is one."""
    from skillgym.extract.encoders import GET_R3M, EncoderError, load_r3m_state_dict

    size = int(name.split("-")[1])
    try:
        load_r3m_state_dict(path, size)
    except EncoderError as e:
        return str(e).removeprefix(f"{path}").lstrip(": ").removesuffix(GET_R3M.format(size=size))
    return None
