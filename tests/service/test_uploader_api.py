"""The uploader's HTTP API in-process, against the embedded broker and S3 endpoint."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest
from prometheus_client import REGISTRY

from atelier_shared import events, topics
from tests.conftest import Deployment, jpeg_bytes, s3_frozen
from tests.kafka import read_topic
from tests.service.api import RunningApi, limited_brands, running_api, running_uploader

pytestmark = pytest.mark.service


@pytest.fixture
async def api(deployment: Deployment) -> AsyncIterator[tuple[str, RunningApi]]:
    """The uploader (as acme's key by default), and the status service it forwards reads to."""
    async with running_api(deployment) as running:
        yield running.url, running


async def test_multipart_upload_is_published_and_readable_at_once(api: tuple[str, RunningApi]) -> None:
    url, running = api
    settings = running.settings
    form = aiohttp.FormData()
    form.add_field("brand", "lumen")
    form.add_field("tier", "preview")
    form.add_field(
        "file", jpeg_bytes(400, 300), filename="look.jpg", content_type="text/plain"
    )  # Content-Type is ignored.
    async with running.session("lumen") as session:
        async with session.post(f"{url}/v1/assets", data=form) as response:
            assert response.status == 202
            body = await response.json()
            assert response.headers["X-Trace-Id"] == body["trace_id"]
        async with session.get(f"{url}/v1/assets/{body['asset_id']}") as response:
            status = await response.json()
            assert response.status == 200 and status["stage"] == "uploaded"
            assert status["original"]["url"].startswith(settings.s3_endpoint)
        async with session.get(f"{url}/v1/assets/no-such-asset") as response:
            assert response.status == 404 and (await response.json())["error"]["code"] == "not_found"
    [record] = await read_topic(
        settings.kafka_bootstrap, settings.topics.name(topics.UPLOADED), until=lambda found: len(found) >= 1
    )
    uploaded = events.AssetUploaded.FromString(record.value)
    assert record.key.decode() == body["asset_id"] == uploaded.asset.asset_id
    assert (uploaded.asset.brand, uploaded.asset.tier) == ("lumen", events.TIER_PREVIEW)
    assert (uploaded.asset.original.width, uploaded.asset.original.height) == (400, 300)
    assert uploaded.asset.original.content_type == "image/jpeg"
    assert dict(record.headers)["traceparent"].decode().split("-")[1] == body["trace_id"]


async def test_idempotency_key_maps_retries_to_one_asset(api: tuple[str, RunningApi]) -> None:
    url, running = api
    async with running.session("acme") as session:
        ids = []
        for _ in range(2):
            async with session.post(
                f"{url}/v1/assets?brand=acme", data=jpeg_bytes(), headers={"Idempotency-Key": "batch-7/img-1"}
            ) as response:
                assert response.status == 202
                ids.append((await response.json())["asset_id"])
        assert ids[0] == ids[1]


async def test_a_reference_over_256_characters_is_refused_in_a_form_or_the_query(api: tuple[str, RunningApi]) -> None:
    """Regression: the README's 256-character `reference` was cut silently in a form and kept whole
    (up to aiohttp's 8 KB request line) in the query of a raw-body upload."""
    url, running = api
    long, longest = "r" * 257, "r" * 256
    async with running.session("acme") as session:
        form = aiohttp.FormData()
        form.add_field("reference", long)
        form.add_field("file", jpeg_bytes(64, 48), filename="a.jpg")
        for body, query in ((form, ""), (jpeg_bytes(64, 48), f"?reference={long}")):
            async with session.post(f"{url}/v1/assets{query}", data=body) as response:
                assert response.status == 422 and (await response.json())["error"]["code"] == "invalid_reference"
        async with session.post(f"{url}/v1/assets?reference={longest}", data=jpeg_bytes(64, 48)) as response:
            assert response.status == 202


# A replica whose body buffer is one largest body: one upload without a length holds all of it.
ONE_BODY = {"max_upload_bytes": 200_000, "upload_buffer_bytes": 200_000}


async def post(session: aiohttp.ClientSession, url: str, data: object) -> tuple[int, str]:
    """(status, error code or "") of an upload."""
    async with session.post(url, data=data) as response:
        return response.status, (await response.json()).get("error", {}).get("code", "")


@asynccontextmanager
async def buffer_held(running: RunningApi, brand: str) -> AsyncIterator[asyncio.Task[tuple[int, str]]]:
    """A brand's upload, sent without a length, holding the replica's whole body buffer (ONE_BODY)
    until the block ends, when the rest of it is sent; its task."""
    image = jpeg_bytes(400, 300)
    sent_half, finish = asyncio.Event(), asyncio.Event()

    async def slow_body() -> AsyncIterator[bytes]:
        yield image[: len(image) // 2]
        sent_half.set()
        await finish.wait()
        yield image[len(image) // 2 :]

    async with running.session(brand) as session:
        slow = asyncio.create_task(post(session, f"{running.url}/v1/assets?brand={brand}", slow_body()))
        try:
            await asyncio.wait_for(sent_half.wait(), timeout=10)
            async with asyncio.timeout(10):  # Its key checked, it holds the buffer.
                while REGISTRY.get_sample_value("atelier_upload_body_bytes") != ONE_BODY["upload_buffer_bytes"]:
                    await asyncio.sleep(0.01)
            yield slow
        finally:
            finish.set()
            await asyncio.wait([slow], timeout=30)


async def test_upload_bodies_beyond_the_replicas_buffer_wait_then_are_answered_busy(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: every upload's body was read whole into memory at once, whatever else was being
    read, so a burst of large uploads (150 at 40 MB) held gigabytes and the replica was killed for
    its memory, losing every upload in flight. Bodies now reserve their size from a budget first."""
    monkeypatch.setattr("atelier_uploader.api.BODY_WAIT_S", 2.0)
    async with running_api(deployment, **ONE_BODY) as running, running.session("acme") as session:
        url = f"{running.url}/v1/assets?brand=acme"
        async with buffer_held(running, "acme") as slow:
            small = asyncio.create_task(post(session, url, jpeg_bytes(64, 48)))
            done, _ = await asyncio.wait([small], timeout=1.0)
            assert not done, "a second body was taken in while the first held the whole buffer"
            assert await asyncio.wait_for(small, timeout=30) == (503, "busy")
        assert slow.done() and slow.result() == (202, "")
        assert await post(session, url, jpeg_bytes(64, 48)) == (202, "")  # Room again once the first was done.


async def test_a_brand_over_its_rate_is_refused_before_it_waits_for_room(
    deployment: Deployment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: the rate limit was checked after the body was taken in, so a brand sending more
    than its rate allows held room in the replica's body buffer that other brands' uploads waited for
    (and, with the buffer full, it was answered 503 busy after a wait instead of 429 at once)."""
    monkeypatch.setattr("atelier_uploader.api.BODY_WAIT_S", 120.0)  # Waiting for room would outlast the test.
    brands = limited_brands(tmp_path / "brands", rate="1/minute")
    async with running_api(deployment, brands_dir=brands, **ONE_BODY) as running, running.session("acme") as session:
        url = f"{running.url}/v1/assets?brand=acme"
        assert await post(session, url, jpeg_bytes(64, 48)) == (202, "")  # Its one upload this minute.
        async with buffer_held(running, "lumen"):
            refused = await asyncio.wait_for(post(session, url, jpeg_bytes(64, 48)), timeout=30)
            assert refused == (429, "rate_limited")
        elsewhere = f"{running.url}/v1/assets?brand=lumen"  # Another brand's: forbidden comes first, as before.
        assert await post(session, elsewhere, jpeg_bytes(64, 48)) == (403, "brand_forbidden")


async def test_store_outage_answers_503_and_accepts_nothing(
    api: tuple[str, RunningApi], deployment: Deployment
) -> None:
    url, running = api
    deployment.infra.s3.stop()
    try:
        async with running.session("acme") as session:
            async with session.post(f"{url}/v1/assets?brand=acme", data=jpeg_bytes()) as response:
                assert response.status == 503
                assert (
                    response.headers["Retry-After"] and (await response.json())["error"]["code"] == "store_unavailable"
                )
            async with session.get(f"{url}/readyz") as response:
                assert response.status == 503
    finally:
        deployment.infra.s3.start()


async def test_uploads_are_accepted_while_the_status_service_is_down(deployment: Deployment) -> None:
    """Regression: the uploader's readiness included the status view, so while its table recovered,
    uploads were refused (and Kubernetes would take the pod out). Accepting uploads must not depend on it."""
    async with running_uploader(deployment, "http://127.0.0.1:9") as running:  # Nothing listens there.
        url = running.url
        async with running.session("acme") as session:
            async with session.get(f"{url}/readyz") as response:
                assert response.status == 200, await response.text()
            async with session.post(f"{url}/v1/assets?brand=acme", data=jpeg_bytes()) as response:
                assert response.status == 202
                asset_id = (await response.json())["asset_id"]
            async with session.get(f"{url}/v1/assets/{asset_id}") as response:  # This uploader's own answer.
                assert response.status == 200 and (await response.json())["stage"] == "uploaded"
            async with session.get(f"{url}/v1/assets/unknown") as response:
                assert response.status == 503 and (await response.json())["error"]["code"] == "status_unavailable"


async def test_an_object_store_that_hangs_answers_503_within_the_deadline(deployment: Deployment) -> None:
    """Regression: with the S3 endpoint frozen (it accepts connections and never answers), an upload
    waited out the whole outage (make bench-reliability, 60 s). It is now answered 503 with Retry-After
    at the upload deadline, and the same upload succeeds once the store answers again."""
    async with (
        running_uploader(deployment, "http://127.0.0.1:9", ingest_deadline_s=1.0) as running,
        running.session("acme") as session,
    ):
        with s3_frozen(deployment.infra):
            async with session.post(f"{running.url}/v1/assets?brand=acme", data=jpeg_bytes()) as response:
                assert response.status == 503 and response.headers["Retry-After"]
                assert (await response.json())["error"]["code"] == "dependency_timeout"
            retry = {"Idempotency-Key": "retried-while-s3-hangs"}  # Its body check reads the store too.
            url = f"{running.url}/v1/assets?brand=acme"
            async with session.post(url, data=jpeg_bytes(), headers=retry) as response:
                assert response.status == 503
                assert (await response.json())["error"]["code"] == "dependency_timeout"
        async with session.post(f"{running.url}/v1/assets?brand=acme", data=jpeg_bytes()) as response:
            assert response.status == 202


async def test_a_status_service_answering_json_that_is_not_an_object_is_a_503(deployment: Deployment) -> None:
    """Regression: a status service answering `[]` raised AttributeError in the uploader's lookup (a 500)."""
    from aiohttp import web

    async def a_list(request: web.Request) -> web.Response:
        return web.json_response([])

    app = web.Application()
    app.router.add_get("/{tail:.*}", a_list)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        status_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        async with (
            running_uploader(deployment, status_url) as running,
            running.session("acme") as session,
            session.get(f"{running.url}/v1/assets/some-id") as response,
        ):
            assert response.status == 503 and (await response.json())["error"]["code"] == "status_unavailable"
    finally:
        await runner.cleanup()
