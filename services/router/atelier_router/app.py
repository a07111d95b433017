"""Router wiring: brand guidelines, the lag monitor and fail-over policy, routing and re-rendering.

Two consumers share one producer: tagged assets become style requests (to the pool the policy
chooses), and exported assets that fail-over served degraded become re-render requests once the
quality pool has spare capacity.
"""

import asyncio

from opentelemetry import trace
from prometheus_client import Counter

from atelier_router import handlers
from atelier_router.failover import FailoverPolicy
from atelier_router.lag import LagMonitor, pool_specs
from atelier_router.rerender import RERENDERS, RerenderGate
from atelier_router.settings import RouterSettings
from atelier_shared import (
    BatchPolicy,
    BrandBook,
    ConsumerConfig,
    ConsumerRuntime,
    Delivery,
    EventProducer,
    OpsServer,
    Outgoing,
    events,
    get_logger,
    per_record,
    topics,
    tracer,
)
from atelier_shared.events import MODEL_TIER_NAMES, TIER_NAMES
from atelier_shared.service import crashed_by

log = get_logger(__name__)

ROUTE_DECISIONS = Counter(
    "atelier_route_decisions_total",
    "Routing decisions by brand, tier, pool, how the style was chosen, and whether degraded.",
    ["brand", "tier", "model_tier", "style_source", "degraded"],
)


class RouterApp:
    """The router process."""

    def __init__(self, settings: RouterSettings) -> None:
        self.settings = settings
        names = settings.topics
        self._names = names
        self.brands = BrandBook.load(settings.brands_dir)
        self.crashed = asyncio.Event()
        self.producer = EventProducer(settings.kafka_bootstrap, client_id="router")
        self.monitor = LagMonitor(
            settings,
            pool_specs(names),
            interval_s=settings.lag_poll_interval_s,
            window_s=settings.lag_window_s,
            min_span_s=settings.lag_min_span_s,
            default_service_ms=settings.default_service_ms,
        )
        self.policy = FailoverPolicy(self.monitor.estimate, settings.failover)
        self.monitor.on_sample = self.policy.reassess
        self.gate = RerenderGate(
            lambda: self.monitor.estimate("quality"),
            self.policy.any_degraded,
            settings.rerender_max_backlog,
            settings.lag_poll_interval_s,
        )
        self.routing = ConsumerRuntime(
            "router",
            settings,
            ConsumerConfig(
                group_id=names.group("router"),
                topics={names.name(topics.TAGGED): 0},
                batch=BatchPolicy(max_items=32),
            ),
            per_record(self._route),
            self.producer,
            crashed_by(self.crashed),
        )
        self.rerendering = ConsumerRuntime(
            "router-rerender",
            settings,
            ConsumerConfig(
                group_id=names.group("router-rerender"),
                topics={names.name(topics.EXPORTED): 0},
                batch=BatchPolicy(max_items=1),
                buffer_per_priority=10_000,
            ),
            per_record(self._rerender),
            self.producer,
            crashed_by(self.crashed),
        )
        self.ops = OpsServer(settings.ops_host, settings.ops_port, {"kafka": self._ready})

    async def _ready(self) -> bool:
        return self.routing.ready and self.rerendering.ready and self.monitor.samples_taken > 0

    async def start(self) -> None:
        """Ops, producer, lag monitor, then both consumers."""
        await self.ops.start()
        await self.producer.start()
        await self.monitor.start()
        await self.routing.start()
        await self.rerendering.start()
        log.info("started", service="router", ops_port=self.ops.port, failover=self.settings.failover_enabled)

    async def stop(self) -> None:
        """Consumers, monitor, producer, ops."""
        await self.rerendering.stop(timeout_s=5)
        await self.routing.stop()
        await self.monitor.stop()
        await self.producer.stop()
        await self.ops.stop()

    async def _route(self, delivery: Delivery) -> list[Outgoing]:
        tagged: events.AssetTagged = delivery.event
        guidelines = self.brands.get(tagged.asset.brand)
        request, choice = handlers.route(tagged, guidelines, self.policy)
        decision = request.route
        trace.get_current_span().set_attributes(
            {
                "atelier.route.style": decision.style,
                "atelier.route.strength": decision.strength,
                "atelier.route.model_tier": MODEL_TIER_NAMES[decision.model_tier],
                "atelier.route.reason": decision.reason,
                "atelier.route.rule": decision.rule,
                "atelier.route.degraded": decision.degraded,
                "atelier.route.expected_wait_ms": decision.expected_wait_ms,
                "atelier.route.target_ms": decision.target_ms,
            }
        )
        ROUTE_DECISIONS.labels(
            tagged.asset.brand,
            TIER_NAMES.get(tagged.asset.tier, "unspecified"),
            MODEL_TIER_NAMES[decision.model_tier],
            "requested" if tagged.asset.requested_style else ("rule" if decision.rule else "default"),
            str(decision.degraded).lower(),
        ).inc()
        self.monitor.note_routed(MODEL_TIER_NAMES[decision.model_tier])
        return [Outgoing(self._names.name(choice.topic), tagged.asset.asset_id, request)]

    async def _rerender(self, delivery: Delivery) -> list[Outgoing]:
        exported: events.AssetExported = delivery.event
        guidelines = self.brands.get(exported.asset.brand)
        if not handlers.needs_rerender(exported, guidelines) or not self.gate.first_time(exported.asset.asset_id):
            return []
        with tracer().start_as_current_span("await spare quality capacity"):
            await self.gate.wait_for_capacity()
        self.monitor.note_routed("quality")
        RERENDERS.labels(exported.asset.brand).inc()
        log.info("re-render queued", asset_id=exported.asset.asset_id, was=exported.model)
        request = handlers.rerender_request(exported)
        return [Outgoing(self._names.name(topics.STYLIZE_RERENDER), exported.asset.asset_id, request)]


def build(settings: RouterSettings) -> RouterApp:
    """The router service."""
    return RouterApp(settings)
