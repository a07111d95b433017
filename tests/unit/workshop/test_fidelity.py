"""The fidelity score tells a real stylization from identity, noise and a broken model."""

from pathlib import Path

import pytest
import torch

from atelier_workshop.defaults import DEFAULT_MODELS, RECIPES, VERSION, style_image
from atelier_workshop.fidelity import held_out_photos, record, served, style_size
from atelier_workshop.training.evaluation import GATE_STYLE, Judge, evaluate
from atelier_workshop.training.loss_networks import lite0
from atelier_workshop.training.trainer import load_style
from tests.conftest import REPO

TILES = next(recipe for recipe in RECIPES if recipe.style == "tiles")
FOLDER = DEFAULT_MODELS / "tiles-quality" / str(VERSION)


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> tuple[Judge, dict[str, torch.Tensor], torch.Tensor]:
    image = style_image(TILES, tmp_path_factory.mktemp("styles"), Path("unused"))
    manifest, _ = served(FOLDER)
    style = load_style(image, style_size(manifest))
    return Judge(lite0(), style), held_out_photos(REPO.parent / "shared" / "data" / "content"), style


def test_a_trained_model_ranks_ahead_of_identity_and_noise_and_passes(scene) -> None:  # type: ignore[no-untyped-def]
    judge, photos, _ = scene
    fidelity = evaluate(served(FOLDER)[1], judge, photos)
    assert fidelity.passed, fidelity.record()
    for photo in fidelity.photos:
        assert photo.style < 1.0 and photo.style < photo.noise_style  # Closer to the style than the photo or noise.
        assert photo.content > photo.noise_content
    assert fidelity.content >= fidelity.content_floor > fidelity.noise_content


def test_identity_brings_no_style_and_fails(scene) -> None:  # type: ignore[no-untyped-def]
    judge, photos, _ = scene
    fidelity = evaluate(lambda photo: photo, judge, photos)
    assert fidelity.style == pytest.approx(1.0) and fidelity.style > GATE_STYLE and not fidelity.passed


def test_a_model_that_outputs_the_styles_mean_colour_fails(scene) -> None:  # type: ignore[no-untyped-def]
    judge, photos, style = scene
    mean = style.mean(dim=(2, 3), keepdim=True)
    fidelity = evaluate(lambda photo: mean.expand_as(photo).clone(), judge, photos)
    assert not fidelity.passed and fidelity.content < fidelity.content_floor, fidelity.record()


def test_scores_are_written_into_the_manifest(tmp_path: Path, scene) -> None:  # type: ignore[no-untyped-def]
    judge, photos, _ = scene
    copy = tmp_path / "tiles-quality" / str(VERSION)
    copy.mkdir(parents=True)
    for item in FOLDER.iterdir():
        (copy / item.name).write_bytes(item.read_bytes())
    manifest = record(copy, evaluate(lambda photo: photo, judge, photos))
    assert manifest.metrics["fidelity"]["passed"] is False and manifest.metrics["fidelity"]["photos"]
