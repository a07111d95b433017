"""Asset ids: fresh for HTTP uploads, derived (stable) for stored objects and idempotency keys.

A derived id lets a redelivered notification, or a retried upload with the same Idempotency-Key,
land on the same asset; and it lets whoever dropped a file compute its id:
uuid5(ASSET_NAMESPACE, "object:<bucket>/<key>@<etag>").
"""

import uuid

ASSET_NAMESPACE = uuid.UUID("6f1c2b1e-6a55-4f8e-9a53-3f0e5f7c9a10")


def new_asset_id() -> str:
    """A fresh asset id."""
    return str(uuid.uuid4())


def asset_id_for_key(brand: str, idempotency_key: str) -> str:
    """The asset id an Idempotency-Key maps to."""
    return str(uuid.uuid5(ASSET_NAMESPACE, f"idempotency:{brand}:{idempotency_key}"))


def asset_id_for_object(bucket: str, key: str, etag: str) -> str:
    """The asset id of a stored object (bucket drop or intake event without an id)."""
    return str(uuid.uuid5(ASSET_NAMESPACE, f"object:{bucket}/{key}@{etag}"))
