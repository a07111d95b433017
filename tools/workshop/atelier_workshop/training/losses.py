"""Perceptual losses (Johnson et al. 2016): content features, style Gram matrices, total variation."""

import torch
from torch.nn import functional

from atelier_workshop.training.loss_networks import LossNetwork


def gram(features: torch.Tensor) -> torch.Tensor:
    """Channel correlations, normalised by the number of elements: (B, C, C)."""
    batch, channels, height, width = features.shape
    flat = features.reshape(batch, channels, height * width)
    return flat @ flat.transpose(1, 2) / (channels * height * width)


def covariance_and_mean(features: torch.Tensor) -> torch.Tensor:
    """Centred channel correlations with the channel means appended: (B, C, C + 1).

    Non-negative ReLU features have Gram matrices dominated by their means; centring lets the
    texture (the covariance) drive the loss, and the appended means still match the colours.
    """
    batch, channels, height, width = features.shape
    flat = features.reshape(batch, channels, height * width)
    mean = flat.mean(dim=2, keepdim=True)
    centred = flat - mean
    return torch.cat([centred @ centred.transpose(1, 2) / (height * width), mean], dim=2)


def out_of_range(images: torch.Tensor) -> torch.Tensor:
    """Mean squared excess outside 0..1: serving clamps there, so what lies beyond shows as flat colour."""
    return (functional.relu(images - 1.0) + functional.relu(-images)).pow(2).mean()


def total_variation(images: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference between neighbouring pixels."""
    return (images[..., 1:, :] - images[..., :-1, :]).abs().mean() + (
        images[..., :, 1:] - images[..., :, :-1]
    ).abs().mean()


class PerceptualLoss(torch.nn.Module):
    """Weighted content + style + total-variation loss against one style image.

    Each term is normalised by its target's magnitude (per layer for style), so every layer has an
    equal say whatever the loss network's activation scale, and the weights are comparable across
    loss networks.
    """

    def __init__(
        self,
        network: LossNetwork,
        style: torch.Tensor,
        content_weight: float,
        style_weight: float,
        tv_weight: float,
        statistics: str = "gram",
        range_weight: float = 10.0,
    ) -> None:
        super().__init__()
        self.statistics = covariance_and_mean if statistics == "covariance" else gram
        self.network = network
        self.content_weight = content_weight
        self.style_weight = style_weight
        self.tv_weight = tv_weight
        self.range_weight = range_weight
        self.content_layer = network.content_layer
        with torch.no_grad():
            self.style_grams = [self.statistics(features) for features in network(style)]
            self.style_scales = [float(target.pow(2).mean()) + 1e-12 for target in self.style_grams]

    def forward(self, output: torch.Tensor, content: torch.Tensor) -> dict[str, torch.Tensor]:
        output_features = self.network(output)
        with torch.no_grad():
            target = self.network(content)[self.content_layer]
        content_loss = functional.mse_loss(output_features[self.content_layer], target) / (target.pow(2).mean() + 1e-12)
        style_loss = sum(
            (
                functional.mse_loss(self.statistics(features), style.expand(features.shape[0], -1, -1)) / scale
                for features, style, scale in zip(output_features, self.style_grams, self.style_scales, strict=True)
            ),
            torch.zeros((), device=output.device),
        )
        tv_loss = total_variation(output)
        range_loss = out_of_range(output)
        total = (
            self.content_weight * content_loss
            + self.style_weight * style_loss
            + self.tv_weight * tv_loss
            + self.range_weight * range_loss
        )
        return {"total": total, "content": content_loss, "style": style_loss, "tv": tv_loss, "range": range_loss}
