"""What the picture shows routes it: a brand rule on the classifier's category, end to end."""

from pathlib import Path

import pytest

from tests.conftest import jpeg_bytes
from tests.e2e.conftest import Pipeline

pytestmark = pytest.mark.e2e

PHOTO = Path(__file__).resolve().parents[3] / "shared" / "data" / "content" / "amber.jpg"


@pytest.mark.skipif(not PHOTO.is_file(), reason="../shared/data/content/amber.jpg is not beside the checkout")
def test_a_category_rule_routes_a_matching_photo_and_not_another(pipeline: Pipeline) -> None:
    code, church = pipeline.submit(PHOTO.read_bytes(), brand="acme")
    assert code == 202
    code, other = pipeline.submit(jpeg_bytes(seed=3), brand="acme")  # A gradient with noise: no clear subject.
    assert code == 202
    done = pipeline.wait_final([church["asset_id"], other["asset_id"]])

    matched = done[church["asset_id"]]
    assert matched["tags"]["category"] == "building" and matched["tags"]["category_confidence"] >= 0.5
    assert {"vault", "monastery", "palace", "church"} & {s["label"] for s in matched["tags"]["subjects"]}
    assert (matched["route"]["style"], matched["route"]["rule"]) == ("tiles", "buildings-in-mosaic")
    assert "category == building (is 'building')" in matched["route"]["reason"]

    unmatched = done[other["asset_id"]]
    assert unmatched["tags"]["category"] == ""
    assert (unmatched["route"]["style"], unmatched["route"]["rule"]) == ("brush", "")
    assert "brand default" in unmatched["route"]["reason"]
