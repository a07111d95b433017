"""A client of the uploader's HTTP API: submit images, follow their status, download renditions."""

import asyncio
import mimetypes
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

FINAL_STAGES = frozenset({"exported", "failed"})
# Answers to a read that mean "not now": the API or the status service behind it restarting or overloaded.
_PASSING = frozenset({429, 502, 503, 504})
# What the API accepts (atelier_shared.images.SUPPORTED_TYPES; the client does not install that package).
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".tif", ".tiff", ".heic", ".heif", ".avif"})


class ApiError(Exception):
    """The API refused a request; the message is its error."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"HTTP {status} {code}: {message}")
        self.status = status
        self.code = code


async def _api_error(response: aiohttp.ClientResponse) -> ApiError:
    """The API's error answer as an ApiError (its code and message, or the raw text)."""
    try:
        error = (await response.json()).get("error", {})
    except (aiohttp.ContentTypeError, ValueError):
        error = {"message": (await response.text())[:200]}
    return ApiError(response.status, error.get("code", "error"), error.get("message", response.reason or ""))


@dataclass
class Submission:
    """One submitted file and what became of it."""

    path: Path
    asset_id: str = ""
    error: str = ""
    status: dict[str, Any] = field(default_factory=dict)

    @property
    def stage(self) -> str:
        if self.error:
            return "rejected"
        return str(self.status.get("stage", "submitted"))


def image_files(paths: list[Path]) -> list[Path]:
    """Image files among the paths, folders expanded (sorted)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()))
        else:
            found.append(path)
    return found


class AtelierClient:
    """Async client for one Atelier API."""

    def __init__(self, api_url: str, api_key: str = "", timeout_s: float = 60.0) -> None:
        self.api_url = api_url.rstrip("/")
        # Sent to the API only: renditions download from presigned object-store URLs without it.
        self._auth = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s))

    async def close(self) -> None:
        """Close the HTTP session."""
        await self._session.close()

    async def __aenter__(self) -> "AtelierClient":
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def submit(
        self, path: Path, brand: str, tier: str = "production", style: str = "", patience_s: float = 300.0
    ) -> str:
        """Upload one file (multipart); its asset id. Over the brand's limits (429), while the API
        starts (503 `starting`) or is busy with other bodies (503 `busy`, this one unread), waits as
        Retry-After says for up to `patience_s`; ApiError when
        refused (another 503 too: an upload that timed out may have been accepted, and a retry
        without its Idempotency-Key would make a second asset)."""
        deadline = time.monotonic() + patience_s
        while True:
            form = aiohttp.FormData()
            form.add_field("brand", brand)
            form.add_field("tier", tier)
            if style:
                form.add_field("style", style)
            content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            form.add_field("file", path.read_bytes(), filename=path.name, content_type=content_type)
            async with self._session.post(f"{self.api_url}/v1/assets", data=form, headers=self._auth) as response:
                if response.status == 202:
                    return str((await response.json())["asset_id"])
                error = await _api_error(response)
                wait_s = float(response.headers.get("Retry-After", "1") or 1)
            waits = response.status == 429 or (response.status == 503 and error.code in ("starting", "busy"))
            if not waits or time.monotonic() + wait_s > deadline:
                raise error
            await asyncio.sleep(wait_s)

    async def status(self, asset_id: str) -> dict[str, Any] | None:
        """An asset's status, or None while the API does not know it."""
        async with self._session.get(f"{self.api_url}/v1/assets/{asset_id}", headers=self._auth) as response:
            if response.status == 404:
                return None
            if response.status != 200:
                raise await _api_error(response)
            return await response.json()  # type: ignore[no-any-return]

    async def wait(
        self,
        submissions: list[Submission],
        timeout_s: float,
        on_progress: Callable[[Submission], None] = lambda submission: None,
    ) -> None:
        """Poll until every accepted submission is exported or failed, or the timeout passes. An API
        that does not answer for a while (restarting, overloaded) is waited out until then; a refusal
        (a revoked key) raises ApiError."""
        pending = [s for s in submissions if s.asset_id and s.stage not in FINAL_STAGES]
        deadline = time.monotonic() + timeout_s
        while pending and time.monotonic() < deadline:
            for submission in list(pending):
                try:
                    status = await self.status(submission.asset_id)
                except (aiohttp.ClientError, TimeoutError):
                    break  # Not answering: the next round tries again.
                except ApiError as exc:
                    if exc.status not in _PASSING:
                        raise
                    break
                if status is None:
                    continue
                changed = status.get("stage") != submission.status.get("stage")
                submission.status = status
                if changed:
                    on_progress(submission)
                if submission.stage in FINAL_STAGES:
                    pending.remove(submission)
            await asyncio.sleep(0.3)

    async def download(self, submission: Submission, folder: Path) -> list[Path]:
        """Save an exported asset's renditions into `folder`; their paths."""
        folder.mkdir(parents=True, exist_ok=True)
        saved = []
        for rendition in submission.status.get("renditions", []):
            url = rendition["object"].get("url")
            if not url:
                continue
            suffix = Path(rendition["object"]["key"]).suffix
            target = folder / f"{rendition['profile']}{suffix}"
            async with self._session.get(url) as response:
                response.raise_for_status()
                target.write_bytes(await response.read())
            saved.append(target)
        return saved
