"""An S3 driver on boto3 as a third party writes it: no harness import but the interface and the taxonomy."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from conformance import errors
from conformance.driver import BaseDriver, Capabilities, Mode, Object


class MinimalS3(BaseDriver):
    """write, read, stat, delete and list on one bucket; credentials from the standard AWS chain."""

    name = "minimal-s3"
    service = "s3"

    def __init__(self, bucket: str, endpoint_url: str | None = None, region: str = "us-east-1", **timeouts: Any):
        config = Config(
            connect_timeout=float(timeouts.get("connect_timeout", 5)),
            read_timeout=float(timeouts.get("read_timeout", 30)),
            retries={"total_max_attempts": int(timeouts.get("retries", 2)) + 1},
        )
        self.bucket = bucket
        self.s3 = boto3.client("s3", endpoint_url=endpoint_url, region_name=region, config=config)

    def capabilities(self) -> Capabilities:
        return Capabilities(operations={"write", "read", "stat", "delete", "list"})

    def _call(self, op: str, path: str, fn: Any) -> Any:
        try:
            return fn()
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            where = {"op": op, "path": path, "driver": self.name}
            if code in ("NoSuchKey", "404", "NotFound"):
                raise errors.ObjectNotExist(code, **where) from exc
            if status == 403:
                raise errors.PermissionDenied(code, **where) from exc
            if status in (429, 503) or code == "SlowDown":
                raise errors.RequestThrottled(code, **where) from exc
            raise (errors.ServiceInternal if status >= 500 else errors.Unexpected)(code, **where) from exc
        except BotoCoreError as exc:
            raise errors.NetworkError(type(exc).__name__, op=op, path=path, driver=self.name) from exc

    def write(self, path: str, data: bytes, **pairs: Any) -> Object:
        self.check_pairs("write", pairs, path)
        self._call("write", path, lambda: self.s3.put_object(Bucket=self.bucket, Key=path, Body=bytes(data)))
        return Object(path=path, mode=Mode.READ, size=len(data))

    def read(self, path: str, **pairs: Any) -> bytes:
        self.check_pairs("read", pairs, path)
        return self._call("read", path, lambda: self.s3.get_object(Bucket=self.bucket, Key=path)["Body"].read())

    def stat(self, path: str, **pairs: Any) -> Object:
        self.check_pairs("stat", pairs, path)
        head = self._call("stat", path, lambda: self.s3.head_object(Bucket=self.bucket, Key=path))
        return Object(path=path, mode=Mode.READ, size=int(head["ContentLength"]))

    def delete(self, path: str, **pairs: Any) -> None:
        self.check_pairs("delete", pairs, path)
        self._call("delete", path, lambda: self.s3.delete_object(Bucket=self.bucket, Key=path))

    def list(self, prefix: str, **pairs: Any) -> Iterator[Object]:
        self.check_pairs("list", pairs, prefix)
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        for page in self._call("list", prefix, lambda: list(pages)):
            for item in page.get("Contents", ()):
                yield Object(path=item["Key"], mode=Mode.READ, size=int(item["Size"]))
