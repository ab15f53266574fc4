"""SSE pair rules shared by the bundled drivers that offer server-side encryption (gsp-rules 4)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from typing import Any

from conformance import errors

SSE_WRITE_PAIRS = frozenset(
    {
        "server_side_encryption",
        "server_side_encryption_aws_kms_key_id",
        "server_side_encryption_context",
        "server_side_encryption_bucket_key_enabled",
        "server_side_encryption_customer_algorithm",
        "server_side_encryption_customer_key",
    }
)
#: Read and stat take only the SSE-C pairs (SSE-6).
SSE_C_PAIRS = frozenset({"server_side_encryption_customer_algorithm", "server_side_encryption_customer_key"})
SSE_ALGORITHMS = frozenset({"AES256", "aws:kms"})


def key_md5(key: bytes) -> str:
    """base64(md5(key)), as S3 reports an SSE-C key (SSE-3)."""
    return base64.b64encode(hashlib.md5(key).digest()).decode()


def customer_key(pairs: Mapping[str, Any], op: str, path: str, driver: str) -> bytes | None:
    """The validated SSE-C key of a call, or None; refuses what S3 would refuse, before any request."""
    algorithm = pairs.get("server_side_encryption_customer_algorithm")
    key = pairs.get("server_side_encryption_customer_key")
    context = {"op": op, "path": path, "driver": driver}
    if algorithm is None and key is None:
        return None
    if algorithm is None:
        # SSE-5: stock go-storage silently wrote plaintext here; we refuse instead.
        raise errors.PairRequired(keys=["server_side_encryption_customer_algorithm"], **context)
    if algorithm != "AES256":
        raise errors.RestrictionDissatisfied(f"customer algorithm must be AES256, not {algorithm!r}", **context)
    if not isinstance(key, bytes | bytearray) or len(key) != 32:
        length = len(key) if isinstance(key, bytes | bytearray) else 0
        raise errors.RestrictionDissatisfied(
            f"invalid server-side encryption customer key: {length} bytes, need 32", **context
        )
    return bytes(key)


def managed_encryption(pairs: Mapping[str, Any], op: str, path: str, driver: str) -> dict[str, Any]:
    """Validated SSE-S3 / SSE-KMS pairs of a write, as the system metadata they produce."""
    context = {"op": op, "path": path, "driver": driver}
    algorithm = pairs.get("server_side_encryption")
    kms_only = [k for k in pairs if k.startswith("server_side_encryption_") and k not in SSE_C_PAIRS]
    if algorithm is None:
        if kms_only:
            raise errors.PairRequired(keys=["server_side_encryption"], **context)
        return {}
    if algorithm not in SSE_ALGORITHMS:
        raise errors.RestrictionDissatisfied(
            f"server_side_encryption must be one of {sorted(SSE_ALGORITHMS)}", **context
        )
    if "server_side_encryption_customer_algorithm" in pairs:
        raise errors.RestrictionDissatisfied("SSE-C cannot be combined with server_side_encryption", **context)
    if algorithm == "AES256" and kms_only:
        raise errors.RestrictionDissatisfied(f"{kms_only[0]} needs server_side_encryption=aws:kms", **context)
    return {"server_side_encryption": algorithm} | {k: pairs[k] for k in kms_only}
