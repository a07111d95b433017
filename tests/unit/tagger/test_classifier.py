"""The tagger's classifier: ImageNet classes from the exported EfficientNet-Lite0, and coarse categories."""

import asyncio
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from atelier_shared import InvalidModel
from atelier_tagger.classifier import CATEGORIES, Classifier, class_names
from atelier_workshop.lite0 import export_classifier
from tests.conftest import REPO

AMBER = REPO.parent / "shared" / "data" / "content" / "amber.jpg"


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("classifier")
    export_classifier(folder)
    return folder


def loaded(folder: Path) -> Classifier:
    classifier = Classifier(folder, threshold=0.35)
    asyncio.run(classifier.start())
    return classifier


def test_the_category_table_is_consistent() -> None:
    names = class_names()
    assert len(names) == 1000 and names[0] == "tench" and names[770] == "running shoe"
    indices = [index for group in CATEGORIES.values() for index in group]
    assert len(indices) == len(set(indices)) and all(0 <= index < 1000 for index in indices)  # No class in two.
    assert {names[index] for index in CATEGORIES["footwear"]} == {
        "clog",
        "cowboy boot",
        "Loafer",
        "running shoe",
        "sandal",
    }
    assert {names[index] for index in CATEGORIES["person"]} == {"ballplayer", "groom", "scuba diver"}
    assert "pizza" in {names[index] for index in CATEGORIES["food"]}


@pytest.mark.skipif(not AMBER.is_file(), reason="../shared/data/content/amber.jpg is not beside the checkout")
def test_a_photo_gets_a_sensible_label_and_category(exported: Path) -> None:
    seen = loaded(exported).see(Image.open(AMBER))
    assert {subject.label for subject in seen.subjects} & {"vault", "monastery", "palace", "church", "bell cote"}
    assert seen.subjects[0].confidence > 0.2 and seen.subjects == sorted(seen.subjects, key=lambda s: -s.confidence)
    assert (seen.category, seen.category_confidence > 0.5) == ("building", True)


def test_scikit_images_photos_land_in_their_categories(exported: Path) -> None:
    from skimage import data

    classifier = loaded(exported)
    assert classifier.see(Image.fromarray(data.chelsea())).category == "animal"
    assert classifier.see(Image.fromarray(data.coffee())).category == "food"


def test_an_image_without_a_clear_subject_gets_no_category(exported: Path) -> None:
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 256, (224, 224, 3), dtype=np.uint8))
    seen = loaded(exported).see(noise)
    assert seen.category == "" and len(seen.subjects) == 3
    grey = loaded(exported).see(Image.new("RGB", (300, 300), (128, 128, 128)))
    assert grey.category == ""  # Near-uniform: the 398 animal classes alone would sum to 0.4.


def test_a_replaced_model_file_is_refused(exported: Path, tmp_path: Path) -> None:
    for name in ("classifier.json", "classifier.onnx"):
        (tmp_path / name).write_bytes((exported / name).read_bytes())
    with (tmp_path / "classifier.onnx").open("ab") as model:
        model.write(b"\0")
    with pytest.raises(InvalidModel, match="SHA-256"):
        loaded(tmp_path)
    with pytest.raises(InvalidModel, match="export-classifier"):
        loaded(tmp_path / "missing")


def test_the_built_package_carries_the_class_names(tmp_path: Path) -> None:
    """The class table is package data: a wheel without it would start and then fail on the first image."""
    source = tmp_path / "tagger"  # Built from a copy: setuptools writes build/ beside the sources.
    shutil.copytree(REPO / "services" / "tagger", source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    [wheel] = tmp_path.glob("atelier_tagger-*.whl")
    assert "atelier_tagger/imagenet_classes.tsv" in zipfile.ZipFile(wheel).namelist()
