"""The exporter: stylized assets in, renditions per brand export profile and signed webhooks, exported events out."""

from atelier_exporter.exporter import Exporter
from atelier_exporter.settings import ExporterSettings, webhook_secrets
from atelier_shared import BrandBook, ObjectStore, Service, topics


def declare(settings: ExporterSettings) -> Service:
    """The exporter service; SettingsError names a brand's webhook secret variable that is not set."""
    store = ObjectStore(settings)
    brands = BrandBook.load(settings.brands_dir)
    exporter = Exporter(
        store,
        brands,
        settings.bucket_renditions,
        settings.limits,
        webhook_secrets(brands),
        settings.webhook_attempts,
        settings.webhook_timeout_s,
    )
    service = Service("exporter", settings)
    service.check("store", store.ping)
    service.add(exporter)
    service.consume(
        topics.STYLIZED, exporter.export, publishes=topics.EXPORTED, concurrency=settings.exporter_concurrency
    )
    return service
