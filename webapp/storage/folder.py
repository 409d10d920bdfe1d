"""FolderStorage: a folder every machine mounts (NFS, a shared disk): PLINTH_STORAGE=/srv/plinth or file:///srv/plinth.

Writes go to a hidden temporary file beside the target, then os.replace: a reader on any machine
sees the old file or the whole new one. A deleted folder is renamed to a hidden name first, so
no reader lists half of it. Hidden names (starting with '.') are never listed.
"""

from __future__ import annotations

import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from .base import StorageError, Stream, file_chunks


@dataclass(frozen=True)
class FolderStorage:
    root: Path
    url: str

    @classmethod
    def from_url(cls, url: str) -> FolderStorage:
        if url.startswith("file://"):
            parts = urlsplit(url)
            if parts.netloc not in ("", "localhost"):
                raise StorageError(f"PLINTH_STORAGE={url} names another machine ({parts.netloc}); mount its "
                                   "folder here and give the local path (file:///srv/plinth).")
            path = unquote(parts.path)
        else:
            path = url
        if not path.startswith("/"):
            raise StorageError(f"PLINTH_STORAGE={url} is not an absolute folder path.")
        return cls(Path(path), url)

    def _path(self, key: str) -> Path:
        return self.root / key

    def _ready(self) -> None:
        # Never made here: an unmounted share would otherwise fill this machine's own disk unseen.
        if not self.root.is_dir():
            raise StorageError(f"The storage folder {self.root} (PLINTH_STORAGE) does not exist or is not a folder: "
                               "mount the shared folder on this machine, or create it.")

    def check(self) -> None:
        self._ready()
        probe = self.root / f".plinth-check-{secrets.token_hex(4)}"
        try:
            probe.write_bytes(b"ok")
            probe.unlink()
        except OSError as error:
            raise StorageError(f"Plinth cannot write in the storage folder {self.root} (PLINTH_STORAGE): "
                               f"{error.strerror or error}.") from None

    def put(self, key: str, local: Path) -> None:
        self._ready()
        target = self._path(key)
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(local, tmp)
            os.replace(tmp, target)
        except OSError as error:
            tmp.unlink(missing_ok=True)
            raise StorageError(f"Could not write {key} in the storage folder {self.root}: "
                               f"{error.strerror or error}.") from None

    def get(self, key: str, local: Path) -> bool:
        self._ready()
        source = self._path(key)
        if not source.is_file():
            return False
        tmp = local.with_name(f".{local.name}.{secrets.token_hex(4)}.tmp")
        try:
            local.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, tmp)
            os.replace(tmp, local)
        except FileNotFoundError:  # deleted between the check and the copy
            tmp.unlink(missing_ok=True)
            return False
        except OSError:
            tmp.unlink(missing_ok=True)
            raise
        return True

    def files(self, key: str) -> list[str]:
        self._ready()
        folder = self._path(key)
        if not folder.is_dir():
            return []
        return sorted(f"{key}/{p.relative_to(folder).as_posix()}" for p in folder.rglob("*")
                      if p.is_file() and not any(s.startswith(".") for s in p.relative_to(folder).parts))

    def folders(self, key: str) -> list[str]:
        self._ready()
        folder = self._path(key)
        if not folder.is_dir():
            return []
        return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))

    def delete(self, key: str) -> None:
        self._ready()
        target = self._path(key)
        try:
            if target.is_dir():
                aside = target.with_name(f".deleted-{target.name}-{secrets.token_hex(4)}")
                os.replace(target, aside)
                shutil.rmtree(aside, ignore_errors=True)
            else:
                target.unlink(missing_ok=True)
        except FileNotFoundError:
            pass
        except OSError as error:
            raise StorageError(f"Could not delete {key} in the storage folder {self.root}: "
                               f"{error.strerror or error}.") from None

    def exists(self, key: str) -> bool:
        self._ready()
        target = self._path(key)
        return target.is_file() or bool(self.files(key))

    def stream(self, key: str) -> Stream | None:
        self._ready()
        path = self._path(key)
        try:
            return Stream(file_chunks(path), path.stat().st_size) if path.is_file() else None
        except FileNotFoundError:
            return None
