"""The style router: brand guidelines and load decide each asset's style and pool; degraded assets are re-rendered.

Two subscriptions share the producer: tagged assets become style requests (to the pool the
fail-over policy chooses), and exported assets served degraded become re-render requests while the
quality pool has spare capacity. The lag monitor samples the pools' consumer lag on a supervised
background loop; each sample re-assesses fail-over and opens or closes the re-render flow.
"""

from opentelemetry import trace
from prometheus_client import Counter, Gauge

from atelier_router.failover import DEGRADED, SWITCHES, FailoverPolicy
from atelier_router.lag import LagMonitor, pool_specs
from atelier_router.rerender import RERENDERS, Rerenderer
from atelier_router.routing import REQUEST_TOPICS, request_topic, style_request
from atelier_router.rules import choose_style
from atelier_router.settings import RouterSettings
from atelier_shared import BatchPolicy, BrandBook, Choice, Options, Service, Subscription, events, topics

ROUTE_DECISIONS = Counter(
    "atelier_route_decisions_total",
    "Routing decisions by brand, tier, pool, how the style was chosen, and whether degraded.",
    ["brand", "tier", "model_tier", "style_source", "degraded"],
)
LATENCY_TARGET = Gauge(
    "atelier_latency_target_seconds", "Each brand's latency target per tier, from its guidelines.", ["brand", "tier"]
)


def brand_series(brands: BrandBook) -> None:
    """Every brand's targets, and its fail-over and re-render series at zero before anything happens
    (so dashboards and alerts see no fail-over as 0, not as no data)."""
    for name in brands.names():
        guidelines = brands.get(name)
        for tier, target_ms in guidelines.latency_targets_ms.items():
            LATENCY_TARGET.labels(name, tier).set(target_ms / 1000)
        DEGRADED.labels(name).set(0)
        for pool in ("fast", "quality"):
            SWITCHES.labels(name, pool)
        RERENDERS.labels(name)


class Router:
    """Routes tagged assets: the brand's rules choose the style, the fail-over policy the pool."""

    def __init__(self, brands: BrandBook, policy: FailoverPolicy, monitor: LagMonitor) -> None:
        self._brands = brands
        self._policy = policy
        self._monitor = monitor

    async def route(self, tagged: events.AssetTagged) -> events.StyleRequested:
        """AssetTagged in, StyleRequested out (to the chosen pool's topic)."""
        guidelines = self._brands.get(tagged.asset.brand)
        guidelines.check_tier(events.tier_name(tagged.asset.tier))
        style = choose_style(guidelines, tagged.tags, tagged.asset.requested_style)
        request = style_request(tagged, guidelines, style, self._policy.choose(tagged.asset.tier, guidelines))
        decision = request.route
        model_tier = events.model_tier_name(decision.model_tier)
        trace.get_current_span().set_attributes(
            {
                "atelier.route.style": decision.style,
                "atelier.route.strength": decision.strength,
                "atelier.route.model_tier": model_tier,
                "atelier.route.reason": decision.reason,
                "atelier.route.rule": decision.rule,
                "atelier.route.degraded": decision.degraded,
                "atelier.route.expected_wait_ms": decision.expected_wait_ms,
                "atelier.route.target_ms": decision.target_ms,
            }
        )
        ROUTE_DECISIONS.labels(
            tagged.asset.brand,
            events.tier_name(tagged.asset.tier),
            model_tier,
            "requested" if tagged.asset.requested_style else ("rule" if decision.rule else "default"),
            str(decision.degraded).lower(),
        ).inc()
        self._monitor.note_routed(model_tier)
        return request


def declare(settings: RouterSettings) -> Service:
    """The router service."""
    brands = BrandBook.load(settings.brands_dir)
    monitor = LagMonitor(
        settings,
        pool_specs(settings.topics),
        interval_s=settings.lag_poll_interval_s,
        window_s=settings.lag_window_s,
        min_span_s=settings.lag_min_span_s,
        default_service_ms=settings.default_service_ms,
        stale_after_s=settings.lag_stale_after_s,
    )
    policy = FailoverPolicy(monitor.estimate, settings.failover, fresh=lambda: monitor.fresh)
    rerenderer = Rerenderer(
        brands,
        lambda: monitor.estimate("quality"),
        policy.any_degraded,
        lambda: monitor.fresh,
        settings.rerender_max_backlog,
        monitor.note_rerender,
    )
    router = Router(brands, policy, monitor)
    brand_series(brands)

    service = Service("router", settings)
    service.add(monitor)
    service.background("lag-monitor", monitor.poll)
    service.reads(topics.POOL_STATS, by="lag monitor")
    service.check("lag_reading", lambda: _fresh(monitor))
    service.consume(
        topics.TAGGED,
        router.route,
        publishes=Choice(REQUEST_TOPICS, request_topic),
        options=Options(batch=BatchPolicy(max_items=32)),
    )
    rerenders = service.consume(
        topics.EXPORTED,
        rerenderer.rerender,
        publishes=topics.STYLIZE_RERENDER,
        group="router-rerender",
        options=Options(batch=BatchPolicy(max_items=1), buffer=10_000),
    )
    rerenderer.on_full = rerenders.pause
    monitor.on_sample = lambda: _on_sample(policy, rerenderer, rerenders)
    return service


async def _fresh(monitor: LagMonitor) -> bool:
    return monitor.fresh


def _on_sample(policy: FailoverPolicy, rerenderer: Rerenderer, rerenders: Subscription) -> None:
    """A sample taken or failed: leave fail-over where it calmed down; let re-renders flow only while a
    fresh reading shows room."""
    policy.reassess()
    if rerenderer.spare():
        rerenders.resume()
    else:
        rerenders.pause()
