"""Architectures of the style networks, as data (no torch: the registry and tools read these)."""

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Architecture:
    """Shape of a transformer network: channel widths of its three stages and residual blocks."""

    kind: str = "transformer_net"
    channels: tuple[int, int, int] = (32, 64, 128)
    residual_blocks: int = 5

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "channels": list(self.channels)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Architecture":
        if data.get("kind") != "transformer_net":
            raise ValueError(f"unknown architecture kind {data.get('kind')!r}")
        channels = tuple(int(width) for width in data["channels"])
        if len(channels) != 3 or min(channels) < 1:
            raise ValueError(f"channels must be three positive widths, got {data['channels']!r}")
        return cls(channels=channels, residual_blocks=int(data["residual_blocks"]))  # type: ignore[arg-type]


# High fidelity: the classic 1.68 M-parameter network.
QUALITY = Architecture(channels=(32, 64, 128), residual_blocks=5)
# Light and fast: a sixth of the parameters, run at reduced resolution by the fast pool.
FAST = Architecture(channels=(16, 32, 64), residual_blocks=3)
ARCHITECTURES = {"quality": QUALITY, "fast": FAST}
