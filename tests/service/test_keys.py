"""API keys against the S3 endpoint: a bad record in the keys bucket never takes the uploader down."""

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from atelier_shared import ObjectStore
from atelier_uploader.access import key_check
from atelier_uploader.keys import KeyRing, KeyStore
from tests.conftest import Deployment

pytestmark = pytest.mark.service


async def test_a_malformed_key_record_keeps_the_keys_already_loaded(deployment: Deployment) -> None:
    """Regression: a reload error other than a store outage (a malformed record, an S3 refusal)
    escaped the refresh loop and crashed every uploader replica at once."""
    settings = deployment.settings()
    store = ObjectStore(settings)
    keys = KeyStore(store, settings.bucket_keys)
    _, key = await keys.create("acme")
    ring = KeyRing(keys, refresh_s=60)
    await ring.start()
    assert await ring.authenticate(key) is not None
    await store.put(settings.bucket_keys, "0123456789abcdef.json", b"{not json", "application/json")
    _, later = await keys.create("lumen")
    await ring.start()  # A refresh that meets the bad record: skipped and logged, not raised.
    assert await ring.authenticate(key) is not None and await ring.ready()
    assert await ring.authenticate(later) is not None  # Keys beside the bad record still load.


async def test_a_good_key_is_not_called_unknown_before_the_keys_are_loaded(deployment: Deployment) -> None:
    """Regression: when the store did not answer at start, the API opened with no keys and answered
    every good key 401 `invalid_key` ("unknown or revoked"), which clients take as final; it now
    answers 503 `starting` with Retry-After until the keys are loaded."""
    settings = deployment.settings()
    keys = KeyStore(ObjectStore(settings), settings.bucket_keys)
    _, key = await keys.create("acme")
    ring = KeyRing(keys, refresh_s=60)  # Not loaded yet: as when the store was down at start.
    check = key_check(ring)

    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(text="ok")

    def request() -> web.Request:
        return make_mocked_request("GET", "/v1/brands", headers={"Authorization": f"Bearer {key}"})

    refused = await check(request(), handler)
    assert refused.status == 503 and refused.headers["Retry-After"] == "2"
    await ring.start()
    assert (await check(request(), handler)).status == 200


async def test_a_revocation_reaches_listeners_before_and_after_the_refresh_that_finds_it(
    deployment: Deployment,
) -> None:
    """Regression: a stream that began listening just after the refresh that dropped its key (it was
    let in before) never heard of the revocation, and stayed open; and a listener that raised stopped
    the refresh, killing the replica's key reloads."""
    settings = deployment.settings()
    keys = KeyStore(ObjectStore(settings), settings.bucket_keys)
    record, _ = await keys.create("acme")
    ring = KeyRing(keys, refresh_s=60)
    await ring.start()
    heard: list[str] = []

    def broken() -> None:
        raise RuntimeError("a listener's bug")

    with ring.on_revoked(record.key_id, broken), ring.on_revoked(record.key_id, lambda: heard.append("before")):
        assert await keys.revoke(record.key_id)
        _, later = await keys.create("lumen")
        await ring.refresh()
    assert await ring.authenticate(later) is not None  # The refresh went on past the broken listener.
    with ring.on_revoked(record.key_id, lambda: heard.append("after")):
        pass
    assert sorted(heard) == ["after", "before"]
