"""Drivers that list only the first page a service answers: neither sets a page size of its own.

``breaks`` names the clauses the bundled specs must fail for each on a backend the harness starts
(every one pages at ``conformance.backends.LIST_PAGE_SIZE``); on memory or fs nothing pages, so they
would pass there.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from third_party_s3 import MinimalS3

from conformance.adapters.dropbox import paths
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

    def _list(self, prefix: str, folder: str) -> Iterator[Object]:
        wanted = paths.to_api(self.root, prefix).lower() if prefix else self.root.lower() + "/"
        with self._call("list", prefix):
            try:
                page = self._dbx.files_list_folder(folder, recursive=True)
            except self._sdk.exceptions.ApiError as exc:
                if exc.error.is_path() and exc.error.get_path().is_not_found():
                    return
                raise
            for entry in page.entries:
                if isinstance(entry, self._files.FileMetadata) and entry.path_lower.startswith(wanted):
                    yield self._object(paths.to_key(self.root, entry.path_display, entry.path_lower), entry)


#: Every driver of this module, for the self-test.
BROKEN = [FirstPageS3, FirstPageDropbox]
