"""Loaded models by style for one pool: resolved in the registry, loaded once, hot-swapped."""

import asyncio
import time
from collections.abc import Iterable

from atelier_shared import AtelierError, InvalidModel, get_logger
from atelier_stylizer.inference import Engine, load_engine
from atelier_stylizer.registry import ModelRegistry, model_name
from atelier_stylizer.settings import StylizerSettings

log = get_logger(__name__)


class Models:
    """The engine for each style of this pool; a newer published version replaces it in flight."""

    def __init__(self, registry: ModelRegistry, settings: StylizerSettings) -> None:
        self._registry = registry
        self._settings = settings
        self._engines: dict[str, Engine] = {}
        self._checked_at: dict[str, float] = {}
        self._refused: set[str] = set()
        self._lock = asyncio.Lock()
        self._missing: list[str] = []

    async def load(self, styles: Iterable[str]) -> list[str]:
        """Load the model of each of these styles not loaded yet; the styles still without one (not
        published yet, refused, or the store or identity unreachable), each with the reason logged."""
        missing: dict[str, str] = {}
        for style in sorted(set(styles)):
            if model_name(style, self._settings.stylizer_pool) in self._engines:
                continue
            try:
                await self.engine(style)
            except Exception as exc:  # Whatever it was, the pool goes on and tries again.
                missing[style] = f"{type(exc).__name__}: {exc}"
        if list(missing) != self._missing:
            self._missing = list(missing)
            if missing:
                log.warning("not ready: no model loaded for styles the brands route to", reasons=missing)
        return list(missing)

    async def load_forever(self, styles: Iterable[str], interval_s: float = 2.0, most_s: float = 30.0) -> None:
        """Load every style's model at start rather than on the first request for it (which waited
        0.3-0.5 s for the load: a not-cached preview's p99, bench/results/preview-cpu-2core.md). Runs
        until all are loaded, trying the missing ones again after interval_s, doubling up to most_s."""
        styles = set(styles)
        while await self.load(styles):
            await asyncio.sleep(interval_s)
            interval_s = min(2 * interval_s, most_s)

    def ready(self, styles: Iterable[str]) -> bool:
        """Whether the model of every one of these styles (the ones the brands route to) is loaded."""
        pool = self._settings.stylizer_pool
        return all(model_name(style, pool) in self._engines for style in styles)

    async def engine(self, style: str) -> Engine:
        """The current engine for a style; UnknownStyle when the registry has no model for it."""
        name = model_name(style, self._settings.stylizer_pool)
        current = self._engines.get(name)
        if current is not None and time.monotonic() - self._checked_at[name] < self._settings.model_refresh_s:
            return current
        async with self._lock:
            return await self._refresh(name, self._engines.get(name))

    async def _refresh(self, name: str, current: Engine | None) -> Engine:
        try:
            latest = await self._registry.latest(name)
        except AtelierError:
            if current is None:
                raise
            log.warning("registry unreachable, keeping the loaded model", model=current.manifest.ref)
            return current
        self._checked_at[name] = time.monotonic()
        ref = f"{name}@{latest}"
        if current is not None and (current.manifest.version == latest or ref in self._refused):
            return current
        if ref in self._refused:  # Refused before, none loaded: not fetched again until a newer version.
            raise InvalidModel(f"model {ref} was refused; publish a newer version")
        try:
            manifest, folder = await self._registry.fetch(name, latest)
            engine = await asyncio.to_thread(
                load_engine,
                folder,
                manifest,
                self._settings.stylizer_backend,
                self._settings.stylizer_device,
                self._settings.stylizer_precision,
                self._settings.stylizer_threads or None,
                self._settings.stylizer_compile,
                self._settings.stylizer_working_side,
            )
        except InvalidModel as exc:
            self._refused.add(ref)
            if current is None:
                log.error("refused model version, none loaded for its style", refused=ref, error=str(exc))
                raise
            log.error("refused new model version, keeping the loaded one", refused=ref, error=str(exc))
            return current
        self._engines[name] = engine
        log.info(
            "model loaded" if current is None else "model hot-swapped",
            model=manifest.ref,
            previous=current.manifest.ref if current else None,
            backend=engine.backend,
        )
        return engine

    def working_side(self, engine: Engine) -> int:
        """The side to run at: the pool's setting, else the model's own."""
        return self._settings.stylizer_working_side or engine.manifest.working_side


class Preload:
    """A service component: one pass of Models.load over the routed styles as the service starts."""

    def __init__(self, models: Models, styles: Iterable[str]) -> None:
        self._models = models
        self._styles = set(styles)

    async def start(self) -> None:
        await self._models.load(self._styles)

    async def stop(self) -> None:
        """Nothing to release: the engines live as long as the process."""
