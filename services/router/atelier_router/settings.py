"""The router's settings (ATELIER_* variables)."""

from pydantic import Field, model_validator

from atelier_router.failover import FailoverSettings
from atelier_shared import AtelierSettings


class RouterSettings(AtelierSettings):
    """Health and metrics port, lag reading, fail-over thresholds, re-render gate."""

    ops_port: int = Field(9102, ge=0, le=65535)
    # Lag-aware fail-over; off routes production to the quality pool whatever the load.
    failover_enabled: bool = True
    lag_poll_interval_s: float = Field(1.0, gt=0)
    lag_window_s: float = Field(10.0, gt=0)
    # Shortest window over which a drain rate is trusted.
    lag_min_span_s: float = Field(2.0, gt=0)
    # With no successful lag sample for this long the reading is stale: the router is unready and fails safe.
    lag_stale_after_s: float = Field(10.0, gt=0)
    failover_enter_ratio: float = Field(0.8, gt=0)
    failover_exit_ratio: float = Field(0.7, gt=0)
    failover_min_dwell_s: float = Field(10.0, ge=0)
    pipeline_overhead_ms: float = Field(500.0, ge=0)
    default_service_ms: float = Field(1000.0, gt=0)
    # Re-renders start while the quality pool's backlog is below this many requests.
    rerender_max_backlog: int = Field(2, ge=1)

    @model_validator(mode="after")
    def _consistent(self) -> "RouterSettings":
        if self.lag_stale_after_s <= self.lag_poll_interval_s:
            raise ValueError("lag_stale_after_s must be longer than lag_poll_interval_s")
        if self.failover_exit_ratio >= self.failover_enter_ratio:
            raise ValueError("failover_exit_ratio must be below failover_enter_ratio, or a steady load flaps")
        return self

    @property
    def failover(self) -> FailoverSettings:
        return FailoverSettings(
            enter_ratio=self.failover_enter_ratio,
            exit_ratio=self.failover_exit_ratio,
            min_dwell_s=self.failover_min_dwell_s,
            overhead_ms=self.pipeline_overhead_ms,
            enabled=self.failover_enabled,
        )
