"""What every storage backend offers (webapp/storage/folder.py, webapp/storage/s3.py)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pipeline import PlinthError

CHUNK = 1024 * 1024  # bytes per chunk of a stream


class StorageError(PlinthError):
    """The shared storage could not do what was asked: one plain line that names the storage
    (its URL, never a secret) and what is wrong (bucket missing, endpoint unreachable, access denied)."""

    def __init__(self, message: str):
        super().__init__("storage", message)


@dataclass(frozen=True)
class Stream:
    """A stored file, read lazily: iterate `chunks` once (bytes, up to CHUNK each)."""

    chunks: Iterator[bytes]
    size: int  # bytes


class Storage(Protocol):
    """Keys are clean relative POSIX paths ("models/<folder>/model.glb"), under the storage's prefix."""

    url: str  # for messages: the storage's address without secrets

    def check(self) -> None:
        """StorageError when the storage cannot be read and written."""

    def put(self, key: str, local: Path) -> None:
        """Store the file `local` under `key`; readers see the old object or the whole new one."""

    def get(self, key: str, local: Path) -> bool:
        """Download the file `key` to `local` (replaced atomically, folders made); False when absent."""

    def files(self, key: str) -> list[str]:
        """Keys of every file under the folder `key` (recursively); [] when none."""

    def folders(self, key: str) -> list[str]:
        """Names of the folders directly under `key`."""

    def delete(self, key: str) -> None:
        """Remove the file `key` or everything under the folder `key` (nothing there: nothing happens)."""

    def exists(self, key: str) -> bool:
        """Whether `key` is a file or a folder with files."""

    def stream(self, key: str) -> Stream | None:
        """The file `key` as chunks, or None when absent."""


def file_chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        while block := fh.read(CHUNK):
            yield block
