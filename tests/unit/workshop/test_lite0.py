"""EfficientNet-Lite0's packaged ImageNet weights: they load exactly and recognise what a photo shows."""

import math

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from atelier_shared import InvalidModel
from atelier_workshop.lite0 import EfficientNetLite0, load_lite0, packaged_weights
from atelier_workshop.training.loss_networks import lite0
from tests.conftest import real_photos


def photo_batch(side: int = 224) -> torch.Tensor:
    """The colour photo beside the checkout (or the project's generated product shot), 224 px."""
    photos = real_photos()
    path = next((p for p in photos if p.stem == "amber"), None) or next(p for p in photos if "product" in p.stem)
    image = ImageOps.fit(Image.open(path).convert("RGB"), (side, side))
    return torch.from_numpy(np.asarray(image, dtype=np.float32).transpose(2, 0, 1).copy() / 255.0)[None]


def entropy(logits: torch.Tensor) -> float:
    probabilities = logits.softmax(-1)[0]
    return float(-(probabilities * probabilities.clamp_min(1e-12).log()).sum())


def test_the_packaged_weights_load_with_every_key_and_classify_a_photo_far_from_uniformly() -> None:
    network, digest = load_lite0()
    assert len(digest) == 64 and not any(p.requires_grad for p in network.parameters()) and not network.training
    with torch.no_grad():
        trained, untrained = network(photo_batch()), EfficientNetLite0().eval()(photo_batch())
    uniform = math.log(1000)
    assert entropy(trained) < 0.5 * uniform and float(trained.softmax(-1).max()) > 0.2
    assert entropy(untrained) > 0.95 * uniform  # Random weights: a flat distribution.


def test_a_file_that_is_not_lite0_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    state = torch.load(packaged_weights(), map_location="cpu", weights_only=True)
    state.pop("_fc.bias")
    torch.save(state, tmp_path / "broken.pth")
    with pytest.raises(InvalidModel, match="missing"):
        load_lite0(tmp_path / "broken.pth")


def test_loss_features_come_from_five_depths_and_content_from_an_eighth_resolution() -> None:
    features = lite0()(torch.rand(1, 3, 128, 128))
    assert [f.shape[1] for f in features] == [32, 96, 144, 240, 480]
    assert [f.shape[2] for f in features] == [64, 64, 32, 16, 8]
    assert lite0().content_layer == 3
