"""The model registry: versioned artifacts by name@version, in the object store or a local folder.

Layout under the registry root (s3://bucket/prefix or a folder):

    <name>/<version>/manifest.json
    <name>/<version>/weights.safetensors
    <name>/<version>/model.onnx            (and model.int8.onnx where INT8 was adopted)

A model's name is <style>-<tier> ("tiles-quality"); versions are integers and the highest wins.
Every file's SHA-256 is in the manifest and is checked before a model is used.
"""

import asyncio
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from atelier_shared import InvalidModel, ObjectStore, UnknownStyle, sha256_hex
from atelier_stylizer.architecture import Architecture

MANIFEST = "manifest.json"
WEIGHTS = "weights.safetensors"
ONNX = "model.onnx"
ONNX_INT8 = "model.int8.onnx"


def model_name(style: str, tier: str) -> str:
    """The registry name of a style's model for a pool."""
    return f"{style}-{tier}"


class ModelManifest(BaseModel):
    """What an artifact is, how it was made, and the hash of each of its files."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal[1] = 1
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    version: int = Field(ge=1)
    style: str
    tier: Literal["quality", "fast"]
    architecture: dict[str, Any]
    # Longest side, in pixels, the model runs at; larger inputs are reduced first.
    working_side: int = Field(ge=16, le=8192)
    files: dict[str, str]
    # Precisions measured and adopted per hardware, e.g. {"int8": {"cpu-avx512": {...}}}.
    precision: dict[str, Any] = {}
    style_image_sha256: str = ""
    loss_network: str = ""
    training: dict[str, Any] = {}
    provenance: dict[str, Any] = {}
    metrics: dict[str, Any] = {}
    created_at: str = Field(default_factory=lambda: datetime.now(UTC).isoformat())

    @field_validator("architecture")
    @classmethod
    def _known_architecture(cls, value: dict[str, Any]) -> dict[str, Any]:
        Architecture.from_dict(value)
        return value

    @field_validator("files")
    @classmethod
    def _has_weights(cls, value: dict[str, str]) -> dict[str, str]:
        if WEIGHTS not in value:
            raise ValueError(f"files must list {WEIGHTS}")
        return value

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def arch(self) -> Architecture:
        return Architecture.from_dict(self.architecture)


def parse_manifest(raw: bytes, where: str) -> ModelManifest:
    """Validate a manifest; InvalidModel says which field is wrong."""
    try:
        return ModelManifest.model_validate(json.loads(raw))
    except (ValueError, ValidationError) as exc:
        raise InvalidModel(f"{where}: invalid manifest: {exc}") from exc


def verify_files(folder: Path, manifest: ModelManifest) -> None:
    """Every file the manifest lists is present with the listed SHA-256."""
    for name, expected in manifest.files.items():
        path = folder / name
        if not path.is_file():
            raise InvalidModel(f"model {manifest.ref}: {name} is missing from the artifact")
        actual = sha256_hex(path.read_bytes())
        if actual != expected:
            raise InvalidModel(
                f"model {manifest.ref}: {name} has sha256 {actual[:12]}..., the manifest says {expected[:12]}...: "
                "the artifact is corrupt or was changed after publishing; publish it again"
            )


class _Backend(Protocol):
    async def list_versions(self, name: str) -> list[int]: ...

    async def read(self, name: str, version: int, filename: str) -> bytes: ...

    async def write(self, name: str, version: int, filename: str, data: bytes) -> None: ...


class _FolderBackend:
    def __init__(self, root: Path) -> None:
        self.root = root

    async def list_versions(self, name: str) -> list[int]:
        folder = self.root / name
        if not folder.is_dir():
            return []
        return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit() and (p / MANIFEST).is_file())

    async def read(self, name: str, version: int, filename: str) -> bytes:
        path = self.root / name / str(version) / filename
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            raise InvalidModel(f"model {name}@{version}: {filename} is missing from {path.parent}") from None

    async def write(self, name: str, version: int, filename: str, data: bytes) -> None:
        path = self.root / name / str(version) / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(path.write_bytes, data)


class _StoreBackend:
    def __init__(self, store: ObjectStore, bucket: str, prefix: str) -> None:
        self.store = store
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""

    async def list_versions(self, name: str) -> list[int]:
        keys = await self.store.list_keys(self.bucket, f"{self.prefix}{name}/")
        versions = set()
        for key in keys:
            parts = key[len(self.prefix) :].split("/")
            if len(parts) == 3 and parts[1].isdigit() and parts[2] == MANIFEST:
                versions.add(int(parts[1]))
        return sorted(versions)

    async def read(self, name: str, version: int, filename: str) -> bytes:
        return await self.store.get(self.bucket, f"{self.prefix}{name}/{version}/{filename}")

    async def write(self, name: str, version: int, filename: str, data: bytes) -> None:
        content_type = "application/json" if filename.endswith(".json") else "application/octet-stream"
        await self.store.put(self.bucket, f"{self.prefix}{name}/{version}/{filename}", data, content_type)


class ModelRegistry:
    """Finds, verifies, downloads and publishes model artifacts."""

    def __init__(self, backend: _Backend, cache_dir: Path) -> None:
        self._backend = backend
        self._cache_dir = cache_dir

    @classmethod
    def open(cls, url: str, store: ObjectStore | None, cache_dir: Path) -> "ModelRegistry":
        """A registry at s3://bucket[/prefix] (through `store`) or at a folder path (file:// optional)."""
        if url.startswith("s3://"):
            if store is None:
                raise ValueError("an s3:// model registry needs an object store")
            bucket, _, prefix = url.removeprefix("s3://").partition("/")
            return cls(_StoreBackend(store, bucket, prefix), cache_dir)
        return cls(_FolderBackend(Path(url.removeprefix("file://"))), cache_dir)

    async def versions(self, name: str) -> list[int]:
        """Published versions of a model, ascending."""
        return await self._backend.list_versions(name)

    async def latest(self, name: str) -> int:
        """The highest published version; UnknownStyle when the model does not exist."""
        versions = await self.versions(name)
        if not versions:
            raise UnknownStyle(
                f"no model {name!r} in the registry: train and publish one (atelier train, atelier models publish)"
            )
        return versions[-1]

    async def manifest(self, name: str, version: int) -> ModelManifest:
        """A version's validated manifest."""
        manifest = parse_manifest(await self._backend.read(name, version, MANIFEST), f"{name}@{version}")
        if manifest.name != name or manifest.version != version:
            raise InvalidModel(f"{name}@{version}: the manifest describes {manifest.ref}")
        return manifest

    async def fetch(self, name: str, version: int) -> tuple[ModelManifest, Path]:
        """The manifest and a local folder holding its files (downloaded once, verified on arrival)."""
        manifest = await self.manifest(name, version)
        folder = self._cache_dir / name / str(version)
        cached = folder / MANIFEST
        if cached.is_file() and parse_manifest(cached.read_bytes(), str(cached)) == manifest:
            return manifest, folder  # Loading verifies the files (artifacts.load_network).
        staging = folder.with_name(f"{version}.partial")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        for filename in manifest.files:
            (staging / filename).write_bytes(await self._backend.read(name, version, filename))
        verify_files(staging, manifest)
        (staging / MANIFEST).write_text(manifest.model_dump_json(indent=2))
        shutil.rmtree(folder, ignore_errors=True)
        staging.rename(folder)
        return manifest, folder

    async def publish(self, folder: Path) -> ModelManifest:
        """Upload an artifact folder after checking it; the manifest goes last, so readers never see half."""
        manifest = parse_manifest((folder / MANIFEST).read_bytes(), str(folder))
        verify_files(folder, manifest)
        for filename in manifest.files:
            await self._backend.write(manifest.name, manifest.version, filename, (folder / filename).read_bytes())
        await self._backend.write(manifest.name, manifest.version, MANIFEST, (folder / MANIFEST).read_bytes())
        return manifest
