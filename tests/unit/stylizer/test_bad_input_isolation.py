"""An input the model fails on is that request's permanent error; its batch-mates are stylized."""

import asyncio
from typing import Any

import numpy as np
from aiokafka.structs import ConsumerRecord

from atelier_shared import Delivery, InferenceFailed, events, topics
from atelier_stylizer.batches import Prepared
from atelier_stylizer.stylizer import Stylizer, _Render


class _Store:
    def __init__(self) -> None:
        self.put_keys: list[str] = []

    async def put(self, bucket: str, key: str, data: bytes, content_type: str, **_: Any) -> None:
        self.put_keys.append(key)


class _Engine:
    """Fails on any batch holding an all-black image, as a model might on an input it cannot take."""

    backend = "fake"
    manifest = type("Manifest", (), {"ref": "tiles-quality@1"})()

    def __init__(self) -> None:
        self.batch_sizes: list[int] = []

    def run(self, batch: np.ndarray) -> np.ndarray:
        self.batch_sizes.append(len(batch))
        if any(float(image.max()) == 0.0 for image in batch):
            raise RuntimeError("Padding size should be less than the corresponding input dimension")
        return batch


def _delivery() -> Delivery:
    record = ConsumerRecord("t", 0, 0, 0, 0, b"", b"", None, 0, 0, [])  # type: ignore[call-arg]
    request = events.StyleRequested(route=events.RouteDecision(strength=1.0))
    return Delivery(record=record, spec=topics.STYLIZE_QUALITY, priority=0, event=request)


def test_the_failing_input_alone_is_refused_permanently_and_the_rest_are_stylized() -> None:
    """Regression: an input that crashed inference failed its whole batch, which was retried three
    times as an unknown error and dead-lettered with its innocent batch-mates."""
    store, engine = _Store(), _Engine()
    stylizer = Stylizer("quality", store, None, "stylized", None)  # type: ignore[arg-type]
    good = Prepared(rgb=np.full((32, 32, 3), 128, dtype=np.uint8), alpha=None)
    bad = Prepared(rgb=np.zeros((32, 32, 3), dtype=np.uint8), alpha=None)
    items = [("a", _delivery(), good), ("b", _delivery(), bad), ("c", _delivery(), good)]
    results: dict[str, Any] = {}
    asyncio.run(stylizer._run(_Render(engine, items, 1.0), results, {}))  # type: ignore[arg-type]
    assert isinstance(results["b"], InferenceFailed) and "Padding size" in str(results["b"])
    assert isinstance(results["a"], events.ObjectRef) and isinstance(results["c"], events.ObjectRef)
    assert sorted(store.put_keys) == ["a", "c"]
    assert engine.batch_sizes == [3, 1, 1, 1]  # The batch, then each image alone.


def test_an_engine_that_fails_on_everything_is_retried_not_blamed_on_the_inputs() -> None:
    """A broken device fails every image: after a few failures in a row the error propagates (retried
    by the runtime) instead of dead-lettering every asset as a bad input."""

    class _Broken(_Engine):
        def run(self, batch: np.ndarray) -> np.ndarray:
            raise RuntimeError("CUDA error: an illegal memory access was encountered")

    stylizer = Stylizer("quality", _Store(), None, "stylized", None)  # type: ignore[arg-type]
    good = Prepared(rgb=np.full((32, 32, 3), 128, dtype=np.uint8), alpha=None)
    blamed, raised = 0, 0
    for index in range(6):
        results: dict[str, Any] = {}
        try:
            asyncio.run(stylizer._run(_Render(_Broken(), [(str(index), _delivery(), good)], 1.0), results, {}))  # type: ignore[arg-type]
        except RuntimeError:
            raised += 1
        else:
            blamed += isinstance(results[str(index)], InferenceFailed)
    assert (blamed, raised) == (3, 3)
