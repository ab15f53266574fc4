"""Drivers that list only the first page a service answers: neither sets a page size of its own.

``breaks`` names the clauses the bundled specs must fail for each on a backend the harness starts
(every one pages at ``conformance.backends.LIST_PAGE_SIZE``); on memory or fs nothing pages, so they
would pass there.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from third_party_s3 import MinimalS3

from conformance.adapters.dropbox.driver import DropboxDriver
from conformance.driver import Mode, Object


class FirstPageS3(MinimalS3):
    """Asks for S3's largest page (MaxKeys=1000), reads it and never sends the continuation token."""

    breaks = {"storager.list-exact"}

    def list(self, prefix: str, **pairs: Any) -> Iterator[Object]:
        self.check_pairs("list", pairs, prefix)
        page = self._call(
            "list", prefix, lambda: self.s3.list_objects_v2(Bucket=self.bucket, Prefix=prefix, MaxKeys=1000)
        )
        for item in page.get("Contents", ()):
            yield Object(path=item["Key"], mode=Mode.READ, size=int(item["Size"]))


class FirstPageDropbox(DropboxDriver):
    """The bundled Dropbox driver, but its listing ignores ``has_more``: one files/list_folder call."""

    breaks = {"storager.list-exact"}

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._dbx = _FirstPageOnly(self._dbx)


class _FirstPageOnly:
    """The SDK client, whose first listing page says no other page follows."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def files_list_folder(self, *args: Any, **kwargs: Any) -> Any:
        page = self._client.files_list_folder(*args, **kwargs)
        page.has_more = False
        return page


#: Every driver of this module, for the self-test.
BROKEN = [FirstPageS3, FirstPageDropbox]
