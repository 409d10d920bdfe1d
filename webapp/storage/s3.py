"""S3Storage: S3-compatible object storage through boto3: PLINTH_STORAGE=s3://bucket/prefix.

$PLINTH_S3_ENDPOINT for a non-AWS server (MinIO, Ceph, a cloud's S3 API); the region and
credentials come from the usual AWS_* variables (or ~/.aws, or an instance role). An object
appears only once its upload is complete (boto3 switches to multipart above 8 MiB), so a reader
sees the old object or the whole new one; webapp/storage pushes a model's manifest last.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .base import CHUNK, StorageError, Stream

_OPEN = "open the bucket"  # what check() does first: a 404 there means the bucket is missing
_MISSING = {"404", "NoSuchKey", "NotFound"}
_DENIED = {"403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AllAccessDisabled",
           "InvalidToken", "ExpiredToken", "AccountProblem"}


def _public(endpoint: str) -> str:
    """The endpoint without a user:password part, for messages."""
    parts = urlsplit(endpoint)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


@dataclass(frozen=True)
class S3Storage:
    bucket: str
    prefix: str  # "" or "some/prefix" (no slashes at the ends)
    endpoint: str | None
    url: str
    client: Any = field(compare=False, repr=False)

    @classmethod
    def from_url(cls, url: str, endpoint: str | None) -> S3Storage:
        parts = urlsplit(url)
        bucket, prefix = parts.netloc, parts.path.strip("/")
        if not bucket:
            raise StorageError(f"PLINTH_STORAGE={url} names no bucket: give s3://bucket/prefix.")
        import boto3  # only when S3 is configured: the embedded default never imports it
        from botocore.config import Config

        config = Config(connect_timeout=5, read_timeout=60, retries={"max_attempts": 3, "mode": "standard"},
                        s3={"addressing_style": "path"} if endpoint else None)
        try:
            client = boto3.session.Session().client("s3", endpoint_url=endpoint or None, config=config)
        except ValueError as error:  # a malformed endpoint URL
            raise StorageError(f"PLINTH_S3_ENDPOINT={_public(endpoint or '')} is not a usable address ({error}).") \
                from None
        where = f" at {_public(endpoint)}" if endpoint else ""
        return cls(bucket, prefix, endpoint, f"s3://{bucket}/{prefix}{where}", client)

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _rel(self, full: str) -> str:
        return full[len(self.prefix) + 1:] if self.prefix else full

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """botocore's exceptions as one plain StorageError line."""
        from boto3.exceptions import S3UploadFailedError
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            ConnectionError,
            NoCredentialsError,
            PartialCredentialsError,
        )

        try:
            yield
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            if code == "NoSuchBucket" or (code in _MISSING and what == _OPEN):
                raise StorageError(f"The bucket {self.bucket!r} does not exist on the storage {self.url}: "
                                   "create it, or fix PLINTH_STORAGE.") from None
            if code in _DENIED:
                raise StorageError(f"The storage {self.url} denied access ({code}) while Plinth tried to {what}: "
                                   "check the AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY and the bucket's policy.") \
                    from None
            raise StorageError(f"The storage {self.url} answered {code or 'an error'} while Plinth tried to {what}.") \
                from None
        except (NoCredentialsError, PartialCredentialsError):
            raise StorageError(f"No credentials for the storage {self.url}: set AWS_ACCESS_KEY_ID and "
                               "AWS_SECRET_ACCESS_KEY (or give this machine an instance role).") from None
        except ConnectionError:
            raise StorageError(f"The storage {self.url} cannot be reached (tried to {what}): check "
                               "PLINTH_S3_ENDPOINT and the network.") from None
        except S3UploadFailedError as error:
            denied = any(code in str(error) for code in _DENIED)
            raise StorageError(f"The storage {self.url} {'denied' if denied else 'refused'} an upload while "
                               f"Plinth tried to {what}.") from None
        except BotoCoreError as error:
            raise StorageError(f"The storage {self.url} could not be used to {what} ({error}).") from None

    def check(self) -> None:
        probe = self._key(f".plinth-check-{secrets.token_hex(4)}")
        with self._errors(_OPEN):
            self.client.head_bucket(Bucket=self.bucket)
        with self._errors("write a test object"):
            self.client.put_object(Bucket=self.bucket, Key=probe, Body=b"ok")
            self.client.delete_object(Bucket=self.bucket, Key=probe)

    def put(self, key: str, local: Path) -> None:
        with self._errors(f"store {key}"):
            self.client.upload_file(str(local), self.bucket, self._key(key))

    def get(self, key: str, local: Path) -> bool:
        from botocore.exceptions import ClientError

        tmp = local.with_name(f".{local.name}.{secrets.token_hex(4)}.tmp")
        made = [p for p in (local.parent, *local.parent.parents) if not p.exists()]  # deepest first
        local.parent.mkdir(parents=True, exist_ok=True)
        found = False
        try:
            with self._errors(f"read {key}"):
                try:
                    self.client.download_file(self.bucket, self._key(key), str(tmp))
                    found = True
                except ClientError as error:
                    if str(error.response.get("Error", {}).get("Code", "")) not in _MISSING:
                        raise
            if found:
                os.replace(tmp, local)
            return found
        finally:
            tmp.unlink(missing_ok=True)
            for folder in made if not found else ():  # a miss leaves no empty folders behind
                try:
                    folder.rmdir()
                except OSError:
                    break

    def _list(self, prefix: str, delimiter: str = "") -> Iterator[dict]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix, **({"Delimiter": delimiter} if delimiter else {}))
        yield from pages

    def files(self, key: str) -> list[str]:
        with self._errors(f"list {key}"):
            found = [obj["Key"] for page in self._list(self._key(key) + "/") for obj in page.get("Contents", ())]
        return sorted(self._rel(k) for k in found)

    def folders(self, key: str) -> list[str]:
        base = self._key(key) + "/"
        with self._errors(f"list {key}"):
            found = [p["Prefix"] for page in self._list(base, "/") for p in page.get("CommonPrefixes", ())]
        return sorted(p[len(base):].rstrip("/") for p in found)

    def delete(self, key: str) -> None:
        full = self._key(key)
        with self._errors(f"delete {key}"):
            keys = [full] + [obj["Key"] for page in self._list(full + "/") for obj in page.get("Contents", ())]
            for start in range(0, len(keys), 1000):  # the API's most per call
                self.client.delete_objects(Bucket=self.bucket, Delete={
                    "Objects": [{"Key": k} for k in keys[start:start + 1000]], "Quiet": True})

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        with self._errors(f"look for {key}"):
            try:
                self.client.head_object(Bucket=self.bucket, Key=self._key(key))
                return True
            except ClientError as error:
                if str(error.response.get("Error", {}).get("Code", "")) not in _MISSING:
                    raise
            page = self.client.list_objects_v2(Bucket=self.bucket, Prefix=self._key(key) + "/", MaxKeys=1)
            return page.get("KeyCount", 0) > 0

    def stream(self, key: str) -> Stream | None:
        from botocore.exceptions import ClientError

        with self._errors(f"read {key}"):
            try:
                found = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
            except ClientError as error:
                if str(error.response.get("Error", {}).get("Code", "")) in _MISSING:
                    return None
                raise
        return Stream(found["Body"].iter_chunks(CHUNK), int(found["ContentLength"]))
