"""The API's front door: keys, tenant isolation, idempotency conflicts, rate limits and quotas, the contract."""

import asyncio
import gzip
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from openapi_spec_validator import validate

from atelier_uploader.keys import ADMIN
from tests.conftest import Deployment, jpeg_bytes
from tests.service.api import RunningApi, limited_brands, running_api, running_uploader

pytestmark = pytest.mark.service


@pytest.fixture
async def api(deployment: Deployment) -> AsyncIterator[RunningApi]:
    async with running_api(deployment) as running:
        yield running


async def submit(api: RunningApi, brand: str | None, data: bytes, query: str = "", **headers: str) -> tuple[int, dict]:
    async with (
        api.session(brand) as session,
        session.post(f"{api.url}/v1/assets{query}", data=data, headers=headers) as response,
    ):
        return response.status, {**await response.json(), "_headers": dict(response.headers)}


async def get(api: RunningApi, brand: str | None, path: str, url: str | None = None) -> tuple[int, dict]:
    async with api.session(brand) as session, session.get(f"{url or api.url}{path}") as response:
        body = await response.json() if response.content_type == "application/json" else {}
        return response.status, body


async def test_every_api_route_needs_a_valid_key(api: RunningApi) -> None:
    for path in ("/v1/assets/some-id", "/v1/brands"):
        status, body = await get(api, None, path)
        assert (status, body["error"]["code"]) == (401, "missing_key")
    assert (await submit(api, None, jpeg_bytes()))[0] == 401
    async with api.session(None) as session:
        headers = {"Authorization": "Bearer atelier_0123456789abcdef_not-the-secret"}
        async with session.get(f"{api.url}/v1/brands", headers=headers) as response:
            assert response.status == 401 and (await response.json())["error"]["code"] == "invalid_key"
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
        for public in ("/healthz", "/readyz", "/openapi.json", "/docs"):
            async with session.get(f"{api.url}{public}") as response:
                assert response.status == 200, public
        async with session.get(f"{api.ops_url}/metrics") as response:
            assert response.status == 200 and "atelier_" in await response.text()

    assert (await get(api, ADMIN, "/metrics"))[0] == 404  # Metrics are not served on the public port at all.


async def test_a_brand_key_acts_only_for_its_brand(api: RunningApi) -> None:
    status, accepted = await submit(api, "acme", jpeg_bytes())
    assert status == 202 and accepted["brand"] == "acme"  # The brand comes from the key.
    asset_id = accepted["asset_id"]
    assert (await get(api, "acme", f"/v1/assets/{asset_id}"))[0] == 200
    assert (await get(api, ADMIN, f"/v1/assets/{asset_id}"))[0] == 200
    status, body = await get(api, "lumen", f"/v1/assets/{asset_id}")
    assert (status, body["error"]["code"]) == (404, "not_found")  # As if it did not exist.

    status, body = await submit(api, "lumen", jpeg_bytes(), "?brand=acme")
    assert (status, body["error"]["code"]) == (403, "brand_forbidden")
    assert "acme" not in body["error"]["message"]

    assert (await get(api, "lumen", "/v1/brands"))[1] == {"brands": ["lumen"]}
    assert (await get(api, ADMIN, "/v1/brands"))[1] == {"brands": ["acme", "lumen"]}
    status, body = await submit(api, ADMIN, jpeg_bytes(), "?brand=nobody")
    assert status == 422 and body["error"]["code"] == "unknown_brand"
    assert "acme" not in body["error"]["message"] and "lumen" not in body["error"]["message"]
    status, body = await submit(api, ADMIN, jpeg_bytes())
    assert (status, body["error"]["code"]) == (400, "missing_brand")


async def test_a_revoked_key_is_refused_within_the_refresh_delay(api: RunningApi) -> None:
    assert (await get(api, "lumen", "/v1/brands"))[0] == 200
    key_id = api.keys["lumen"].split("_")[1]
    assert await api.key_store.revoke(key_id)
    revoked_at = time.monotonic()
    deadline = revoked_at + api.settings.key_refresh_s + 5
    while (await get(api, "lumen", "/v1/brands"))[0] != 401:
        assert time.monotonic() < deadline, "the revoked key still works"
        await asyncio.sleep(0.05)
    assert time.monotonic() - revoked_at < api.settings.key_refresh_s + 5
    assert (await get(api, "acme", "/v1/brands"))[0] == 200  # Other keys are untouched.


async def test_an_idempotency_key_with_another_body_conflicts(api: RunningApi) -> None:
    """Regression: the same Idempotency-Key with a different body got the same asset id and silently
    overwrote the first upload's original."""
    first, second = jpeg_bytes(seed=1), jpeg_bytes(seed=2)
    status, accepted = await submit(api, "acme", first, **{"Idempotency-Key": "k-1"})
    assert status == 202
    status, again = await submit(api, "acme", first, **{"Idempotency-Key": "k-1"})
    assert status == 202 and again["asset_id"] == accepted["asset_id"]
    status, body = await submit(api, "acme", second, **{"Idempotency-Key": "k-1"})
    assert (status, body["error"]["code"]) == (409, "idempotency_conflict")
    status, original = await get(api, "acme", f"/v1/assets/{accepted['asset_id']}")
    assert original["original"]["sha256"] == accepted["original"]["sha256"]
    status, other = await submit(api, "lumen", second, **{"Idempotency-Key": "k-1"})  # Keys are per brand.
    assert status == 202 and other["asset_id"] != accepted["asset_id"]


async def test_an_idempotency_key_with_another_tier_conflicts(api: RunningApi) -> None:
    """Regression: a retry with the same key and image but another tier was accepted (202) and published
    the same asset again with the new tier; only the image was compared."""
    status, _ = await submit(api, "acme", jpeg_bytes(), "?tier=preview", **{"Idempotency-Key": "k-2"})
    assert status == 202
    status, body = await submit(api, "acme", jpeg_bytes(), "?tier=production", **{"Idempotency-Key": "k-2"})
    assert (status, body["error"]["code"]) == (409, "idempotency_conflict")
    assert (await submit(api, "acme", jpeg_bytes(), "?tier=preview", **{"Idempotency-Key": "k-2"}))[0] == 202


async def test_over_the_rate_limit_answers_429_with_retry_after(deployment: Deployment, tmp_path: Path) -> None:
    """Regression too: the rate limit was checked only after the upload was validated, so a request over it
    paid for a full decode first (and a bad image over the limit got 422, not 429)."""
    brands = limited_brands(tmp_path / "brands", rate="3/minute")
    async with running_api(deployment, brands_dir=brands) as api:
        statuses = [(await submit(api, "acme", jpeg_bytes(seed=n)))[0] for n in range(3)]
        assert statuses == [202, 202, 202]
        status, body = await submit(api, "acme", jpeg_bytes(seed=4))
        assert (status, body["error"]["code"]) == (429, "rate_limited")
        assert 1 <= int(body["_headers"]["Retry-After"]) <= 60
        # Refused before it is decoded.
        status, body = await submit(api, "acme", jpeg_bytes()[:100])
        assert (status, body["error"]["code"]) == (429, "rate_limited")
        assert (await submit(api, "lumen", jpeg_bytes(seed=5)))[0] == 202  # Another brand is not limited.


async def test_over_the_in_flight_quota_answers_429(deployment: Deployment, tmp_path: Path) -> None:
    brands = limited_brands(tmp_path / "brands", in_flight=2)
    async with running_api(deployment, brands_dir=brands) as api:
        # Nothing downstream runs here, so every accepted asset stays in flight.
        assert [(await submit(api, "acme", jpeg_bytes(seed=n)))[0] for n in range(2)] == [202, 202]
        status, body = await submit(api, "acme", jpeg_bytes(seed=3))
        assert (status, body["error"]["code"]) == (429, "quota_exceeded")
        assert int(body["_headers"]["Retry-After"]) >= 1
        # Refused before it is decoded (regression: it was validated first, and a bad image got 422).
        status, body = await submit(api, "acme", jpeg_bytes()[:100])
        assert (status, body["error"]["code"]) == (429, "quota_exceeded")
        assert (await submit(api, "lumen", jpeg_bytes(seed=4)))[0] == 202


async def test_the_contract_is_a_valid_openapi_document_of_every_route(api: RunningApi) -> None:
    status, document = await get(api, None, "/openapi.json")
    assert status == 200
    validate(document)
    assert document["openapi"] == "3.1.0"
    assert set(document["paths"]) == {
        "/v1/assets",
        "/v1/assets/{asset_id}",
        "/v1/brands",
        "/v1/brands/{brand}",
        "/v1/events",
        "/v1/assets/{asset_id}/trace",
    }
    assert "text/event-stream" in document["paths"]["/v1/events"]["get"]["responses"]["200"]["content"]
    assert set(document["paths"]["/v1/assets"]["post"]["responses"]) >= {"202", "401", "403", "409", "413", "429"}
    async with api.session(None) as session:
        async with session.get(f"{api.url}/docs") as response:
            page = await response.text()
        assert "/docs/static/swagger-ui-bundle.js" in page and "/docs/openapi.json" in page
        async with session.get(f"{api.url}/docs/static/swagger-ui-bundle.js") as response:
            assert response.status == 200 and len(await response.read()) > 100_000


async def test_a_malformed_multipart_body_is_a_400(api: RunningApi) -> None:
    """Regression (found by the contract test): a part header with a control byte made aiohttp's
    multipart reader raise InvalidHeader, which the API answered with a 500."""
    boundary = "b0undary"
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="\xd0\x1f"\r\n\r\nx\r\n--{boundary}--\r\n').encode(
        "latin-1"
    )
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    status, answer = await submit(api, "acme", body, **headers)
    assert (status, answer["error"]["code"]) == (400, "malformed_body")


async def raw_post(api: RunningApi, head: bytes, body: bytes) -> tuple[int, bytes]:
    """POST /v1/assets with header lines exactly as given (bytes aiohttp's client would not send)."""
    host, port = api.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        request = b"POST /v1/assets?brand=acme HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + head
        writer.write(request + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        answer = await asyncio.wait_for(reader.read(), timeout=30)
    finally:
        writer.close()
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


async def test_bodies_aiohttp_cannot_read_and_undecodable_headers_are_4xx(api: RunningApi) -> None:
    """Regression: a form part with an unknown Content-Transfer-Encoding (RuntimeError), a body declared
    gzip that is not (RequestPayloadError), and header bytes that are not UTF-8 in the Idempotency-Key
    or the key's secret (UnicodeEncodeError) were each answered 500."""
    boundary = "b0undary"
    part = f'--{boundary}\r\nContent-Disposition: form-data; name="tier"\r\nContent-Transfer-Encoding: x-foo\r\n\r\n'
    body = (part + f"preview\r\n--{boundary}--\r\n").encode()
    status, answer = await submit(api, "acme", body, **{"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert (status, answer["error"]["code"]) == (400, "malformed_body")
    status, answer = await submit(api, "acme", b"not gzip at all", **{"Content-Encoding": "gzip"})
    assert (status, answer["error"]["code"]) == (400, "malformed_body")
    # Regression: a compressed field was inflated whole, unbounded (64 KiB of gzip: up to a gigabyte).
    packed = gzip.compress(b"preview" + b" " * 1_000_000)
    part = f'--{boundary}\r\nContent-Disposition: form-data; name="tier"\r\nContent-Encoding: gzip\r\n\r\n'
    body = part.encode() + packed + f"\r\n--{boundary}--\r\n".encode()
    status, answer = await submit(api, "acme", body, **{"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert (status, answer["error"]["code"]) == (400, "malformed_body") and "compressed" in answer["error"]["message"]
    key = f"Authorization: Bearer {api.keys['acme']}\r\n".encode()
    status, text = await raw_post(api, key + b"Idempotency-Key: \xff\xfe\r\n", jpeg_bytes())
    assert status == 400 and b"invalid_idempotency_key" in text
    known_id = api.keys["acme"].split("_")[1]
    status, text = await raw_post(
        api, f"Authorization: Bearer atelier_{known_id}_".encode() + b"\xff\r\n", jpeg_bytes()
    )
    assert status == 401 and b"invalid_key" in text


async def test_a_store_refusing_a_write_is_a_500_that_names_no_bucket(api: RunningApi, deployment: Deployment) -> None:
    """Regression: every AtelierError but a transient one was answered 422 ("your input is invalid")
    with its message, so an object store refusing the write (NoSuchBucket here) told the client it
    had sent bad input, and named the bucket and key."""
    from atelier_shared import ObjectStore

    store = ObjectStore(api.settings)
    bucket = api.settings.bucket_originals
    for key in await store.list_keys(bucket, ""):
        await store.delete(bucket, key)
    await asyncio.to_thread(store._client.remove_bucket, bucket)  # noqa: SLF001
    status, answer = await submit(api, "acme", jpeg_bytes())
    assert (status, answer["error"]["code"]) == (500, "internal_error")
    assert bucket not in str(answer) and "acme/" not in str(answer)


async def test_a_form_gets_room_for_its_framing_and_one_file_in_few_parts(deployment: Deployment) -> None:
    """Regression: a form's whole Content-Length was held to the image's limit, so an image a few
    hundred bytes under it was refused as a form (413) but taken as a raw body; and a chunked form could
    carry any number of parts and files."""
    image = jpeg_bytes()
    async with running_uploader(deployment, "http://127.0.0.1:9", max_upload_bytes=len(image) + 8) as api:

        async def post(form: aiohttp.FormData) -> tuple[int, dict]:
            async with api.session("acme") as session, session.post(f"{api.url}/v1/assets", data=form) as response:
                return response.status, await response.json()

        form = aiohttp.FormData({"tier": "preview"})
        form.add_field("file", image, filename="a.jpg")
        assert (await post(form))[0] == 202
        twice = aiohttp.FormData()
        for name in ("a.jpg", "b.jpg"):
            twice.add_field("file", image, filename=name)
        status, body = await post(twice)
        assert (status, body["error"]["code"]) == (400, "malformed_body") and "one `file`" in body["error"]["message"]
        many = aiohttp.FormData({f"field{index}": "x" for index in range(40)})
        many.add_field("file", image, filename="a.jpg")
        status, body = await post(many)
        assert (status, body["error"]["code"]) == (400, "malformed_body")
