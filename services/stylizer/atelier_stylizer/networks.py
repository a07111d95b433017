"""Feed-forward style networks (Johnson et al. 2016, with resize-then-conv upsampling and instance
norm as in Ulyanov et al. and Odena et al.). Networks only compute: devices and precision belong
to the inference module.

Input and output are NCHW float tensors in 0..1 (the output is not clamped); height and width must
be multiples of 4.
"""

import torch
from torch import nn
from torch.nn import functional

from atelier_stylizer.architecture import ARCHITECTURES, FAST, QUALITY, Architecture

__all__ = ["ARCHITECTURES", "FAST", "QUALITY", "Architecture", "TransformerNet", "largest_batch", "parameter_count"]

# CUDA kernels such as reflection padding index with 32-bit integers: no tensor may hold more elements.
_INDEX_LIMIT = 2**31 - 1


class ConvLayer(nn.Module):
    """Reflection padding then convolution (no border artefacts from zero padding)."""

    def __init__(self, inputs: int, outputs: int, kernel: int, stride: int = 1) -> None:
        super().__init__()
        self.pad = nn.ReflectionPad2d(kernel // 2)
        self.conv = nn.Conv2d(inputs, outputs, kernel, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        output: torch.Tensor = self.conv(self.pad(x))
        return output


class ResidualBlock(nn.Module):
    """conv, norm, ReLU, conv, norm, plus the input."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = ConvLayer(channels, channels, 3)
        self.norm1 = nn.InstanceNorm2d(channels, affine=True)
        self.conv2 = ConvLayer(channels, channels, 3)
        self.norm2 = nn.InstanceNorm2d(channels, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = functional.relu(self.norm1(self.conv1(x)))
        output: torch.Tensor = x + self.norm2(self.conv2(y))
        return output


class UpsampleConv(nn.Module):
    """Nearest-neighbour resize by 2, then convolution (avoids transposed-conv checkerboards)."""

    def __init__(self, inputs: int, outputs: int, kernel: int) -> None:
        super().__init__()
        self.conv = ConvLayer(inputs, outputs, kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        output: torch.Tensor = self.conv(functional.interpolate(x, scale_factor=2.0, mode="nearest"))
        return output


class TransformerNet(nn.Module):
    """Downsample twice, residual blocks, upsample twice: an image in, a stylized image out."""

    def __init__(self, architecture: Architecture = QUALITY) -> None:
        super().__init__()
        small, medium, large = architecture.channels
        self.architecture = architecture
        self.encoder = nn.Sequential(
            ConvLayer(3, small, 9),
            nn.InstanceNorm2d(small, affine=True),
            nn.ReLU(),
            ConvLayer(small, medium, 3, stride=2),
            nn.InstanceNorm2d(medium, affine=True),
            nn.ReLU(),
            ConvLayer(medium, large, 3, stride=2),
            nn.InstanceNorm2d(large, affine=True),
            nn.ReLU(),
        )
        self.residuals = nn.Sequential(*(ResidualBlock(large) for _ in range(architecture.residual_blocks)))
        self.decoder = nn.Sequential(
            UpsampleConv(large, medium, 3),
            nn.InstanceNorm2d(medium, affine=True),
            nn.ReLU(),
            UpsampleConv(medium, small, 3),
            nn.InstanceNorm2d(small, affine=True),
            nn.ReLU(),
            ConvLayer(small, 3, 9),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        output: torch.Tensor = self.decoder(self.residuals(self.encoder(x)))
        return output


def parameter_count(network: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(parameter.numel() for parameter in network.parameters() if parameter.requires_grad)


def largest_batch(architecture: Architecture, height: int, width: int) -> int:
    """The most images of this size one forward pass takes before some activation outgrows 32-bit
    indexing (on CUDA, the quality network at 1 MP: 31; batch 32 fails in reflection padding).

    The largest activations are full-resolution: the medium-width upsampled tensor padded by 1 and
    the small-width one padded by 4 for the last 9x9 convolution.
    """
    small, medium, _ = architecture.channels
    per_image = max(medium * (height + 2) * (width + 2), small * (height + 8) * (width + 8))
    return max(1, _INDEX_LIMIT // per_image)
