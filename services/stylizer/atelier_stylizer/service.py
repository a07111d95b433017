"""The stylizer: one process per pool (quality or fast), micro-batching style requests through its models."""

from datetime import timedelta

from atelier_shared import BatchPolicy, BrandBook, ObjectStore, Options, Service, get_logger, topics
from atelier_stylizer.batches import cost
from atelier_stylizer.devicedecode import DeviceDecoder, open_decoder
from atelier_stylizer.inference import resolve_device
from atelier_stylizer.models import Models, Preload
from atelier_stylizer.registry import ModelRegistry
from atelier_stylizer.reporting import PoolReporter
from atelier_stylizer.settings import StylizerSettings
from atelier_stylizer.stylizer import Stylizer

log = get_logger(__name__)


def batch_policy(settings: StylizerSettings, device: str) -> BatchPolicy:
    """Up to max_batch requests (default 8 on CUDA, 1 on CPU, where batching measured slower) within a pixel budget."""
    default = 8 if device == "cuda" else 1
    return BatchPolicy(
        max_items=settings.stylizer_max_batch or default,
        max_wait_ms=settings.stylizer_max_wait_ms,
        max_cost=settings.stylizer_max_batch_pixels,
    )


def jpeg_decoder(settings: StylizerSettings, device: str) -> DeviceDecoder | None:
    """The GPU's JPEG decoder where the settings and the node allow it (ValueError where it was asked
    for and cannot be had); the choice and its reason are logged."""
    if settings.stylizer_decode == "pillow":
        decoder, reason = None, "ATELIER_STYLIZER_DECODE=pillow"
    else:
        decoder, reason = open_decoder(device)
    if decoder is None and settings.stylizer_decode == "nvjpeg":
        raise ValueError(f"ATELIER_STYLIZER_DECODE=nvjpeg, but {reason}")
    log.info("jpeg decoding", decoder="nvjpeg" if decoder else "pillow", reason=reason)
    return decoder


def declare(settings: StylizerSettings) -> Service:
    """The stylizer service of the configured pool."""
    pool = settings.stylizer_pool
    device = resolve_device(settings.stylizer_device)
    store = ObjectStore(settings)
    registry = ModelRegistry.open(settings.registry_url, store, settings.model_cache_dir)
    models = Models(registry, settings)
    # A cached result used after half its retention is renewed (see renew_aging).
    retention = settings.stylized_retention_days
    renew_after = timedelta(days=retention / 2) if retention else None
    stylizer = Stylizer(
        pool, store, models, settings.bucket_stylized, settings.limits, jpeg_decoder(settings, device), renew_after
    )
    cost_side = settings.stylizer_working_side or 1024
    book = BrandBook.load(settings.brands_dir)
    styles = {style for brand in book.names() for style in book.get(brand).allowed_styles()}

    async def models_ready() -> bool:
        return models.ready(styles)

    service = Service("stylizer", settings, attributes={"atelier.pool": pool})
    service.check("store", store.ping)
    service.check("models", models_ready)
    requests = service.consume_batches(
        topics.POOL_TOPICS[pool],
        stylizer.stylize,
        publishes=topics.STYLIZED,
        group=f"stylizer-{pool}",
        options=Options(
            batch=batch_policy(settings, device),
            in_flight=settings.stylizer_in_flight or (2 if device == "cuda" else 1),
            buffer=settings.stylizer_buffer,
            batch_key=lambda request: request.route.style,
            cost=lambda request: cost(request.asset.original, cost_side),
        ),
    )
    reporter = PoolReporter(
        pool,
        stylizer.meter,
        service.publisher(topics.POOL_STATS, by="pool reports"),
        settings.pool_report_interval_s,
        lambda: (service.loop(requests.name).buffered, service.loop(requests.name).paused_partitions),
    )
    service.background("pool-report", reporter.report_forever)
    # The published models of every routed style load before the pool consumes (components start
    # before the consumers), so no request, on a new replica either, waits for one; the rest load
    # in the background as they are published.
    service.add(Preload(models, styles))
    service.background("models", lambda: models.load_forever(styles))
    return service
