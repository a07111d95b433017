"""The client's submit against an API that answers 503: it waits out a starting service, and refuses
to resend an upload that may already have been accepted."""

from pathlib import Path

from aiohttp import web

from atelier_client.client import ApiError, AtelierClient
from tests.conftest import jpeg_bytes
from tests.web import answering_posts

STARTING = (503, {"error": {"code": "starting", "message": "the service is starting: retry shortly"}})


async def submit(tmp_path: Path, answers: list[tuple[int, dict[str, object]]]) -> tuple[str | ApiError, list[int]]:
    """Submit one image to an API whose POST /v1/assets gives `answers` in turn: the asset id (or the
    error raised) and the statuses the API gave."""
    image = tmp_path / "a.jpg"
    image.write_bytes(jpeg_bytes())
    given: list[int] = []

    async def post(request: web.Request) -> web.Response:
        await request.read()
        status, body = answers[len(given)]
        given.append(status)
        return web.json_response(body, status=status, headers={"Retry-After": "0.05"})

    async with answering_posts("/v1/assets", post) as url, AtelierClient(url, "key") as client:
        try:
            return await client.submit(image, "acme"), given
        except ApiError as error:
            return error, given


async def test_a_starting_api_is_waited_out(tmp_path: Path) -> None:
    assert await submit(tmp_path, [STARTING, STARTING, (202, {"asset_id": "a1"})]) == ("a1", [503, 503, 202])


async def test_another_503_is_not_resent(tmp_path: Path) -> None:
    """An ingest that timed out (503 dependency_timeout) may have been accepted: a resend without the
    upload's Idempotency-Key would make a second asset."""
    timed_out = (503, {"error": {"code": "dependency_timeout", "message": "the store did not answer in time"}})
    refused, given = await submit(tmp_path, [timed_out, (202, {"asset_id": "a2"})])
    assert isinstance(refused, ApiError) and (refused.status, refused.code, given) == (503, "dependency_timeout", [503])
