"""API keys: one or more per brand, and admin keys for operators, stored only as argon2 hashes.

A key reads `atelier_<key id>_<secret>`. Its record, `<key id>.json` in the keys bucket, holds the
brand (`*` for an admin key), the argon2 hash of the secret and when it was made; revoking deletes
the record. Every uploader replica reloads the records every `key_refresh_s` seconds, so a new key
works, and a revoked one stops working, within that delay (live event streams it opened end then
too). A verified secret is remembered (its
SHA-256, in memory) so argon2 runs once per key and replica, not on every request.
"""

import asyncio
import hashlib
import hmac
import json
import secrets
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import BaseModel

from atelier_shared import AtelierError, ObjectMissing, ObjectStore, get_logger

log = get_logger(__name__)

PREFIX = "atelier"
ADMIN = "*"
_hasher = PasswordHasher()


class KeyRecord(BaseModel):
    """What the store keeps of a key: never the key itself."""

    key_id: str
    brand: str
    hash: str
    created_at: str
    label: str = ""

    @property
    def admin(self) -> bool:
        return self.brand == ADMIN


@dataclass(frozen=True)
class Principal:
    """Who a request comes from: a brand's key, or an admin key (brand None)."""

    key_id: str
    brand: str | None

    def may_see(self, brand: str) -> bool:
        """Whether this caller may act for, or read the assets of, `brand`."""
        return self.brand is None or self.brand == brand


def _parse(token: str) -> tuple[str, str] | None:
    """(key id, secret) of a well-formed key."""
    prefix, _, rest = token.partition("_")
    key_id, _, secret = rest.partition("_")
    # Printable ASCII only: aiohttp hands undecodable header bytes on as lone surrogates, which
    # hashing the secret could not encode (a 500 on every route for anyone who knew a key id).
    if prefix != PREFIX or len(key_id) != 16 or not secret or not token.isascii() or not token.isprintable():
        return None
    return key_id, secret


class KeyStore:
    """Key records in the object store: create, list, revoke (an operator's tool and the replicas' source)."""

    def __init__(self, store: ObjectStore, bucket: str) -> None:
        self._store = store
        self._bucket = bucket

    async def create(self, brand: str, label: str = "") -> tuple[KeyRecord, str]:
        """A new key for `brand` (ADMIN for an admin key): its record, and the key, shown only now."""
        key_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
        record = KeyRecord(
            key_id=key_id,
            brand=brand,
            hash=await asyncio.to_thread(_hasher.hash, secret),
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            label=label,
        )
        await self._store.put(self._bucket, f"{key_id}.json", record.model_dump_json().encode(), "application/json")
        return record, f"{PREFIX}_{key_id}_{secret}"

    async def key_ids(self) -> set[str]:
        """The ids of every key in force."""
        return {key.removesuffix(".json") for key in await self._store.list_keys(self._bucket) if key.endswith(".json")}

    async def get(self, key_id: str) -> KeyRecord | None:
        """One key's record, or None once revoked."""
        try:
            return KeyRecord.model_validate(json.loads(await self._store.get(self._bucket, f"{key_id}.json")))
        except ObjectMissing:
            return None

    async def records(self) -> list[KeyRecord]:
        """Every key in force, by brand then creation."""
        found = [await self.get(key_id) for key_id in await self.key_ids()]
        return sorted((r for r in found if r is not None), key=lambda r: (r.brand, r.created_at, r.key_id))

    async def revoke(self, key_id: str) -> bool:
        """Revoke a key; False when no such key is in force."""
        if await self.get(key_id) is None:
            return False
        await self._store.delete(self._bucket, f"{key_id}.json")
        return True


class KeyRing:
    """The keys one uploader replica accepts, reloaded from the store every `refresh_s` seconds."""

    def __init__(self, keys: KeyStore, refresh_s: float) -> None:
        self._keys = keys
        self._refresh_s = refresh_s
        self._records: dict[str, KeyRecord] = {}
        self._verified: dict[str, bytes] = {}
        self._on_revoked: dict[str, set[Callable[[], None]]] = defaultdict(set)
        self._argon2 = asyncio.Semaphore(2)
        self.loaded = False

    async def refresh(self) -> None:
        """Load new keys and forget revoked ones."""
        in_force = await self._keys.key_ids()
        for key_id in set(self._records) - in_force:
            del self._records[key_id]
            self._verified.pop(key_id, None)
            for callback in self._on_revoked.pop(key_id, ()):
                try:
                    callback()
                except Exception as exc:  # One listener's trouble must not stop the refresh.
                    log.error("a revocation listener failed", key_id=key_id, error=repr(exc)[:300])
        for key_id in in_force - set(self._records):
            try:
                record = await self._keys.get(key_id)
            except ValueError as exc:  # A malformed record must not keep the others out.
                log.warning("unreadable key record skipped", key_id=key_id, error=str(exc)[:200])
                continue
            if record is not None:
                self._records[key_id] = record
        self.loaded = True

    @contextmanager
    def on_revoked(self, key_id: str, callback: Callable[[], None]) -> Iterator[None]:
        """Within the block, `callback` is called if the key is revoked (at the refresh that finds it
        gone), or at once if it was revoked already (since the request that holds it was let in)."""
        if key_id not in self._records:
            callback()
        self._on_revoked[key_id].add(callback)
        try:
            yield
        finally:
            callbacks = self._on_revoked.get(key_id)
            if callbacks is not None:
                callbacks.discard(callback)
                if not callbacks:
                    del self._on_revoked[key_id]

    async def start(self) -> None:
        """Load the keys before the API opens (if the store answers; readiness waits otherwise)."""
        await self._refresh_logged()

    async def stop(self) -> None:
        """Nothing to release."""

    async def run(self) -> None:
        """Refresh forever; while the store is unreachable, the keys last loaded stay in force."""
        while True:
            await asyncio.sleep(self._refresh_s)
            await self._refresh_logged()

    async def _refresh_logged(self) -> None:
        try:
            await self.refresh()
        except (AtelierError, ValueError) as exc:  # Store down or refusing, no bucket, a malformed record.
            log.warning("keys not refreshed: the keys last loaded stay in force", error=str(exc))

    async def ready(self) -> bool:
        """Loaded at least once (until then every request would be refused)."""
        return self.loaded

    async def authenticate(self, token: str) -> Principal | None:
        """The caller a key belongs to, or None for a malformed, unknown or revoked key."""
        parsed = _parse(token)
        record = self._records.get(parsed[0]) if parsed else None
        if parsed is None or record is None:
            return None
        key_id, secret = parsed
        digest = hashlib.sha256(secret.encode()).digest()
        remembered = self._verified.get(key_id)
        if remembered is None:
            try:
                async with self._argon2:  # Bad secrets for a known id must not take every thread.
                    await asyncio.to_thread(_hasher.verify, record.hash, secret)
            except (VerificationError, InvalidHashError):
                return None
            self._verified[key_id] = remembered = digest
        if not hmac.compare_digest(remembered, digest) or self._records.get(key_id) is not record:
            return None
        return Principal(key_id=key_id, brand=None if record.admin else record.brand)
