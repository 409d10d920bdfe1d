"""Shared storage for photos and models: a folder every machine mounts, or S3-compatible object storage.

The data folder stays each process's own working copy, with the same layout as always
(data/jobs/<job>/photos/NNN/<name>, data/models/<folder>/..., data/shop/<shop_id>/...). With
$PLINTH_STORAGE set the storage is the truth and the data folder a cache: writers `push` what
they wrote before the database row that points at it exists, readers `pull` on demand.

    storage.push(data, "jobs/<id>/photos")       # the file or folder data/<rel>, to key <prefix>/<rel>
    storage.pull(data, "models/<f>/model.glb")   # -> True when it was there (now in data/<rel>)
    storage.remove(data, "jobs/<id>")            # a file or everything under a folder
    storage.exists(data, rel); storage.open_stream(data, rel) -> Stream | None; storage.check()

With no storage configured push and remove do nothing, pull and exists report the local copy,
and open_stream reads it: the embedded default never imports boto3. No Streamlit import.
"""

from __future__ import annotations

import functools
import os
import secrets
import shutil
from pathlib import Path, PurePosixPath

from .. import settings
from .base import Storage, StorageError, Stream, file_chunks

__all__ = [
    "Storage",
    "StorageError",
    "Stream",
    "backend",
    "check",
    "children",
    "configured",
    "evict",
    "exists",
    "open_stream",
    "pull",
    "push",
    "remove",
]

#: Written last when a folder is pushed: a model folder is never read as a model before its files are all there.
LAST = "manifest.json"


def backend() -> Storage | None:
    """The configured storage ($PLINTH_STORAGE, $PLINTH_S3_ENDPOINT), one per process; None: the data folder only."""
    url = settings.storage_url()
    if url is None:
        return None
    return _backend(url, os.environ.get("PLINTH_S3_ENDPOINT", "").strip())


@functools.lru_cache(maxsize=4)
def _backend(url: str, endpoint: str) -> Storage:
    if url.startswith("s3://"):
        from .s3 import S3Storage

        return S3Storage.from_url(url, endpoint or None)
    if url.startswith(("file://", "/")):
        from .folder import FolderStorage

        return FolderStorage.from_url(url)
    raise StorageError(f"PLINTH_STORAGE={url!r} is not a storage address: give s3://bucket/prefix, "
                       "file:///srv/plinth or /srv/plinth (a folder every machine mounts).")


def configured() -> bool:
    return settings.storage_url() is not None


def check() -> None:
    """At start-up (`plinth serve`, `plinth worker`): StorageError, in plain words, when the
    storage cannot be used (missing bucket or folder, unreachable endpoint, access denied)."""
    store = backend()
    if store is not None:
        store.check()


def key(rel: str | os.PathLike) -> str:
    """`rel` as a clean relative POSIX path ("jobs/abc/photos"); ValueError for anything that could escape."""
    text = str(rel).replace("\\", "/").strip("/")
    parts = PurePosixPath(text).parts
    if not parts or any(p in ("", ".", "..") for p in parts) or str(rel).startswith("/"):
        raise ValueError(f"not a relative storage path: {rel!r}")
    return "/".join(parts)


def _visible(path: Path, root: Path) -> bool:
    """Hidden entries (temporary files, locks, work folders: names starting with '.') never leave the machine."""
    return not any(part.startswith(".") for part in path.relative_to(root).parts)


def push(data: Path, rel: str | os.PathLike) -> None:
    """Upload the file or folder data/<rel> to <prefix>/<rel> (a folder: every visible file in it,
    manifest.json last). Nothing without a storage. FileNotFoundError when there is nothing local."""
    store = backend()
    if store is None:
        return
    name = key(rel)
    local = Path(data) / name
    if local.is_file():
        store.put(name, local)
        return
    if not local.is_dir():
        raise FileNotFoundError(f"nothing to store at {local}")
    files = sorted((p for p in local.rglob("*") if p.is_file() and _visible(p, local)),
                   key=lambda p: (p.relative_to(local).as_posix() == LAST, p.relative_to(local).as_posix()))
    for path in files:
        store.put(f"{name}/{path.relative_to(local).as_posix()}", path)


def pull(data: Path, rel: str | os.PathLike) -> bool:
    """Download the file <prefix>/<rel>, or every file under the folder <rel>, into data/<rel>.
    Each file is replaced atomically, and a folder this data folder did not have appears whole
    or not at all (downloaded beside it, then renamed), so "the folder is here" means complete.
    False when the storage has nothing there. Without a storage: whether data/<rel> exists."""
    store = backend()
    name = key(rel)
    target = Path(data) / name
    if store is None:
        return target.exists()
    if store.get(name, target):
        return True
    found = store.files(name)
    if not found:
        return False
    incoming = target.with_name(f".pull-{target.name}-{secrets.token_hex(4)}")
    try:
        for each in found:
            store.get(each, incoming / each[len(name) + 1:])
        if not target.exists():
            try:
                os.replace(incoming, target)
            except OSError:  # made meanwhile by another process: merge into it below
                pass
        for path in sorted(incoming.rglob("*")) if incoming.is_dir() else ():
            if path.is_file():
                (target / path.relative_to(incoming)).parent.mkdir(parents=True, exist_ok=True)
                os.replace(path, target / path.relative_to(incoming))
    finally:
        shutil.rmtree(incoming, ignore_errors=True)
    return True


def remove(data: Path, rel: str | os.PathLike) -> None:
    """Delete the file or folder <rel> in the storage (the caller deletes its local copy). Nothing without a storage."""
    store = backend()
    if store is not None:
        store.delete(key(rel))


def exists(data: Path, rel: str | os.PathLike) -> bool:
    """Whether the storage (without one: the data folder) has the file or a non-empty folder <rel>."""
    store = backend()
    name = key(rel)
    return (Path(data) / name).exists() if store is None else store.exists(name)


def open_stream(data: Path, rel: str | os.PathLike) -> Stream | None:
    """The file <rel> as chunks and a size in bytes (from the storage, else the data folder); None when absent."""
    store = backend()
    name = key(rel)
    if store is None:
        path = Path(data) / name
        return Stream(file_chunks(path), path.stat().st_size) if path.is_file() else None
    return store.stream(name)


def children(data: Path, rel: str | os.PathLike) -> list[str]:
    """Names of the folders directly under <rel> in the storage (without one: in the data folder)."""
    store = backend()
    name = key(rel)
    if store is None:
        folder = Path(data) / name
        return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    return store.folders(name)


def evict(data: Path, rel: str | os.PathLike) -> None:
    """Drop the local copy of <rel> when the storage holds the truth (a worker's finished model);
    without a storage the data folder is the only copy, so nothing happens."""
    if configured():
        path = Path(data) / key(rel)
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
