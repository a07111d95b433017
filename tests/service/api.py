"""The uploader (and the status service it reads from) running in-process, with an API key per brand."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import yaml

from atelier_shared import ObjectStore, Service
from atelier_status.service import declare as declare_status
from atelier_status.settings import StatusSettings
from atelier_uploader.keys import ADMIN, KeyStore
from atelier_uploader.service import declare
from atelier_uploader.settings import UploaderSettings
from tests.conftest import BRANDS as GUIDELINES
from tests.conftest import Deployment

BRANDS = ("acme", "lumen")


def limited_brands(folder: Path, **limits: object) -> Path:
    """The deployment's brand guidelines, with acme's `limits` replaced."""
    folder.mkdir()
    for path in GUIDELINES.glob("*.yaml"):
        guidelines = yaml.safe_load(path.read_text())
        if guidelines["brand"] == "acme":
            guidelines["limits"] = limits
        (folder / path.name).write_text(yaml.safe_dump(guidelines))
    return folder


@dataclass
class RunningApi:
    """A running uploader: where it listens, its settings, and a key per brand (the admin key under ADMIN)."""

    service: Service
    settings: UploaderSettings
    keys: dict[str, str]
    key_store: KeyStore

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.service.http.public_port}"

    @property
    def ops_url(self) -> str:
        return f"http://127.0.0.1:{self.service.http.port}"

    def session(self, brand: str | None = ADMIN) -> aiohttp.ClientSession:
        """A client session sending a brand's key (no key for None)."""
        headers = {"Authorization": f"Bearer {self.keys[brand]}"} if brand is not None else {}
        return aiohttp.ClientSession(headers=headers, timeout=aiohttp.ClientTimeout(total=30))


@asynccontextmanager
async def running_uploader(deployment: Deployment, status_url: str, **overrides: object) -> AsyncIterator[RunningApi]:
    """The uploader alone, reading statuses from `status_url`."""
    settings: UploaderSettings = deployment.settings(  # type: ignore[assignment]
        UploaderSettings, api_port=0, ops_port=0, status_url=status_url, key_refresh_s=0.2, **overrides
    )
    key_store = KeyStore(ObjectStore(settings), settings.bucket_keys)
    keys = {brand: (await key_store.create(brand, label="test"))[1] for brand in (*BRANDS, ADMIN)}
    service = declare(settings)
    await service.start()
    try:
        yield RunningApi(service, settings, keys, key_store)
    finally:
        await service.stop()


@asynccontextmanager
async def running_api(deployment: Deployment, **overrides: object) -> AsyncIterator[RunningApi]:
    """The uploader and the status service it forwards reads to."""
    status = declare_status(deployment.settings(StatusSettings, ops_port=0))  # type: ignore[arg-type]
    await status.start()
    try:
        async with running_uploader(deployment, f"http://127.0.0.1:{status.http.port}", **overrides) as running:
            yield running
    finally:
        await status.stop()
