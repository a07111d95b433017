"""The uploader: the HTTP API, the bucket-drop trigger and intake events, each validated into AssetUploaded."""

from datetime import timedelta

from atelier_shared import BrandBook, ObjectStore, Service, topics
from atelier_uploader.api import Api
from atelier_uploader.ingest import Ingestor
from atelier_uploader.intake import Intake
from atelier_uploader.settings import UploaderSettings
from atelier_uploader.status import StatusView


def declare(settings: UploaderSettings) -> Service:
    """The uploader service."""
    store = ObjectStore(settings)
    brands = BrandBook.load(settings.brands_dir)
    ingestor = Ingestor(store, brands, settings.limits, settings.bucket_originals)
    intake = Intake(store, ingestor)
    status = StatusView(settings)

    service = Service(
        "uploader",
        settings,
        host=settings.api_host,
        port=settings.api_port,
        max_body_bytes=settings.max_upload_bytes + 1024**2,
    )
    service.check("store", store.ping)
    service.add(status)
    service.reads(*status.sources, by="status view")
    concurrency = settings.intake_concurrency
    service.consume(topics.INBOX, intake.drop, publishes=topics.UPLOADED, concurrency=concurrency)
    service.consume(topics.INTAKE, intake.submitted, publishes=topics.UPLOADED, concurrency=concurrency)
    uploads = service.publisher(topics.UPLOADED, by="POST /v1/assets")
    api = Api(ingestor, uploads, store, status, brands.names(), timedelta(seconds=settings.presign_expiry_s))
    api.routes(service.http.app)
    return service
