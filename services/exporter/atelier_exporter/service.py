"""The exporter: stylized assets in, renditions per brand export profile out (exported events), and
the brands' signed webhooks delivered durably apart from the export (atelier_exporter.deliveries)."""

from atelier_exporter.deliveries import PUBLISHES, WebhookDeliveries
from atelier_exporter.exporter import Exporter
from atelier_exporter.settings import ExporterSettings, webhook_secrets
from atelier_shared import BrandBook, ObjectStore, Service, topics


def declare(settings: ExporterSettings) -> Service:
    """The exporter service; SettingsError names a brand's webhook secret variable that is not set."""
    store = ObjectStore(settings)
    brands = BrandBook.load(settings.brands_dir)
    exporter = Exporter(store, settings.bucket_renditions, settings.limits)
    service = Service("exporter", settings)
    deliveries = WebhookDeliveries(
        brands,
        webhook_secrets(brands),
        settings.webhook_retry_delays_s,
        settings.webhook_give_up_s,
        settings.webhook_timeout_s,
    )
    service.check("store", store.ping)
    service.add(deliveries)
    service.consume(
        topics.STYLIZED, exporter.export, publishes=topics.EXPORTED, concurrency=settings.exporter_concurrency
    )
    concurrency = settings.webhook_concurrency
    service.consume(
        topics.EXPORTED, deliveries.first, publishes=PUBLISHES, group="exporter-webhooks", concurrency=concurrency
    )
    # One consumer group per retry tier: a tier's wait never holds back another tier's due records.
    for number, tier in enumerate(topics.WEBHOOK_RETRIES, start=1):
        service.consume(
            tier, deliveries.retry, publishes=PUBLISHES, group=f"exporter-webhooks-{number}", concurrency=concurrency
        )
    return service
