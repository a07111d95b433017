"""The exporter's settings (ATELIER_* variables) and the brands' webhook secrets, read once at start."""

import os
from collections.abc import Mapping

from pydantic import Field

from atelier_shared import AtelierSettings, BrandBook, SettingsError
from atelier_shared.images import ImageLimits


class ExporterSettings(AtelierSettings):
    """Concurrency and webhook delivery."""

    ops_port: int = Field(9104, ge=0, le=65535)
    exporter_concurrency: int = Field(2, ge=1)
    # Webhooks: each attempt's time limit; the wait before a retry from tier 1, 2 and 3 (the last
    # repeats); how long after the first attempt a delivery gives up (dead-lettered, replayable).
    webhook_timeout_s: float = Field(5.0, gt=0)
    webhook_retry_delays_s: tuple[float, float, float] = (15.0, 300.0, 1800.0)
    webhook_give_up_s: float = Field(86_400.0, gt=0)
    webhook_concurrency: int = Field(8, ge=1)

    @property
    def limits(self) -> ImageLimits:
        return ImageLimits(max_bytes=2**62, max_pixels=200_000_000, max_side=16_384)


def webhook_secrets(brands: BrandBook, environ: Mapping[str, str] = os.environ) -> dict[str, bytes]:
    """Each brand's webhook signing secret, from the variable its guidelines name; read once at start.

    A brand with a webhook whose variable is unset or empty is a start-up error naming the variable.
    """
    secrets: dict[str, bytes] = {}
    missing: list[str] = []
    for brand in brands.names():
        hook = brands.get(brand).webhook
        if hook is None:
            continue
        secret = environ.get(hook.secret_env, "")
        if not secret:
            missing.append(f"  {hook.secret_env}: the webhook secret of brand {brand!r} is not set")
        secrets[brand] = secret.encode()
    if missing:
        raise SettingsError("invalid configuration for the exporter:\n" + "\n".join(missing))
    return secrets
