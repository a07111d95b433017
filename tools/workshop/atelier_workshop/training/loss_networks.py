"""Loss networks for perceptual losses: VGG-16 (ImageNet weights the user supplies) or random features.

No weights can be downloaded. With a file of torchvision's VGG-16 state dict (the `features.N.*`
keys of vgg16-397923af.pth), training uses relu1_2, relu2_2, relu3_3 and relu4_3. Without one, a
fixed, seeded random-feature network of the same shape stands in: random convolutional filters
are known to capture texture statistics in their Gram matrices (Ustyuzhaninov et al., 2017; He et
al., 2016), enough for the style term; see docs in README for the difference measured here.
"""

from pathlib import Path

import torch
from torch import nn

# torchvision's vgg16().features, by index: convs, ReLUs and max-pools.
_VGG16_CONFIG: list[int | str] = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512]
# Indices (in that Sequential) of relu1_2, relu2_2, relu3_3, relu4_3.
_VGG16_TAPS = (3, 8, 15, 22)
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)

# The random network: narrower than VGG (CPU training), same multi-scale layout, averaged pooling.
_RANDOM_CONFIG: list[int | str] = [48, 48, "A", 96, 96, "A", 192, 192, "A", 256]
_RANDOM_TAPS = (3, 8, 13, 15)


def _stack(config: list[int | str], pool: type[nn.Module]) -> nn.Sequential:
    layers: list[nn.Module] = []
    channels = 3
    for item in config:
        if isinstance(item, str):
            layers.append(pool(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(channels, item, kernel_size=3, padding=1), nn.ReLU(inplace=False)]
            channels = item
    return nn.Sequential(*layers)


class LossNetwork(nn.Module):
    """Frozen features at several depths of a normalised input (NCHW, 0..1)."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(
        self, features: nn.Sequential, taps: tuple[int, ...], mean: tuple[float, ...], std: tuple[float, ...], kind: str
    ) -> None:
        super().__init__()
        self.kind = kind
        self.features = nn.Sequential(*list(features)[: max(taps) + 1])
        self.taps = taps
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))
        for parameter in self.parameters():
            parameter.requires_grad_(False)
        self.eval()

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = (x - self.mean) / self.std
        outputs = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in self.taps:
                outputs.append(x)
        return outputs


def vgg16(weights: Path) -> LossNetwork:
    """VGG-16 features from a torchvision-format state dict file."""
    features = _stack(_VGG16_CONFIG, nn.MaxPool2d)
    state = torch.load(weights, map_location="cpu", weights_only=True)
    prefix = "features."
    selected = {name[len(prefix) :]: value for name, value in state.items() if name.startswith(prefix)}
    own = features.state_dict()
    missing = [name for name in own if name not in selected]
    if missing:
        raise ValueError(f"{weights} is not a torchvision VGG-16 state dict: missing {missing[:4]}")
    features.load_state_dict({name: selected[name] for name in own})
    return LossNetwork(features, _VGG16_TAPS, _IMAGENET_MEAN, _IMAGENET_STD, "vgg16")


def random_features(seed: int = 1234) -> LossNetwork:
    """A fixed random-feature network: Kaiming-normal filters from a seeded generator."""
    generator = torch.Generator().manual_seed(seed)
    features = _stack(_RANDOM_CONFIG, nn.AvgPool2d)
    for layer in features:
        if isinstance(layer, nn.Conv2d):
            fan_in = layer.in_channels * layer.kernel_size[0] * layer.kernel_size[1]
            with torch.no_grad():
                layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator) * (2.0 / fan_in) ** 0.5)
                assert layer.bias is not None
                layer.bias.zero_()
    return LossNetwork(features, _RANDOM_TAPS, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), f"random-multiscale-seed{seed}")
