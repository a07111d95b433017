"""The client against an API that answers 503: submit waits out a starting or busy service, and
refuses to resend an upload that may already have been accepted; waiting for assets outlasts an
API that stops answering for a while."""

from pathlib import Path

import pytest
from aiohttp import web

from atelier_client.client import ApiError, AtelierClient, Submission
from tests.conftest import jpeg_bytes
from tests.web import answering, answering_posts

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


async def test_a_busy_api_is_waited_out(tmp_path: Path) -> None:
    busy = (503, {"error": {"code": "busy", "message": "the uploads in progress hold the buffer"}})
    assert await submit(tmp_path, [busy, (202, {"asset_id": "a1"})]) == ("a1", [503, 202])


async def follow(answers: list[tuple[int, dict[str, object]]]) -> Submission:
    """Wait for one asset, whose status the API answers with `answers` in turn (the last one after those)."""
    given: list[int] = []

    async def status(request: web.Request) -> web.Response:
        code, body = answers[min(len(given), len(answers) - 1)]
        given.append(code)
        return web.json_response(body, status=code)

    submission = Submission(Path("a.jpg"), asset_id="a1")
    async with answering("GET", "/v1/assets/{asset_id}", status) as url, AtelierClient(url, "key") as client:
        await client.wait([submission], timeout_s=30)
    return submission


async def test_waiting_outlasts_an_api_that_stops_answering_for_a_while() -> None:
    """Regression: one 503 (the status service restarting, as services here are built to) while
    `atelier submit` waited ended the command with an error: no renditions saved, no summary, even
    for the assets that had finished."""
    unavailable = (503, {"error": {"code": "status_unavailable", "message": "the status service does not answer"}})
    uploaded, exported = (200, {"stage": "uploaded"}), (200, {"stage": "exported"})
    assert (await follow([uploaded, unavailable, unavailable, exported])).stage == "exported"
    with pytest.raises(ApiError, match="401"):  # A refusal is not waited out.
        await follow([uploaded, (401, {"error": {"code": "invalid_key", "message": "revoked"}})])


async def test_another_503_is_not_resent(tmp_path: Path) -> None:
    """An ingest that timed out (503 dependency_timeout) may have been accepted: a resend without the
    upload's Idempotency-Key would make a second asset."""
    timed_out = (503, {"error": {"code": "dependency_timeout", "message": "the store did not answer in time"}})
    refused, given = await submit(tmp_path, [timed_out, (202, {"asset_id": "a2"})])
    assert isinstance(refused, ApiError) and (refused.status, refused.code, given) == (503, "dependency_timeout", [503])
