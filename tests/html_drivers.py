"""A driver for the HTML report tests: its error messages carry markup the report must show as text."""

from __future__ import annotations

from typing import Any

from conformance.adapters.memory import MemoryDriver

from conformance import errors

#: An image with an error handler, a script, and a script end tag that would close a data block.
PAYLOAD = (
    '<img src=x onerror="window.__pwned=1"> <script>window.__pwned=2</script>'
    " </script><script>window.__pwned=3</script>"
)


class MarkupErrors(MemoryDriver):
    """Delete of a missing path raises ObjectNotExist with markup as its message (breaks delete.missing-ok)."""

    def delete(self, path: str, **pairs: Any) -> None:
        self.check_pairs("delete", pairs, path)
        if path not in self._objects:
            raise errors.ObjectNotExist(PAYLOAD, op="delete", path=path, driver=self.name)
        super().delete(path, **pairs)

    def read(self, path: str, **pairs: Any) -> bytes:
        """A read past the end raises a raw exception with markup: an unlisted implementation-defined behaviour."""
        entry = self._objects.get(path)
        if entry is not None and int(pairs.get("offset", 0)) > len(entry.data):
            raise ValueError(PAYLOAD)
        return super().read(path, **pairs)
