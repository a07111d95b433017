"""The uploader: the HTTP API, the bucket-drop trigger and intake events, each validated into AssetUploaded.

Accepting uploads depends on Kafka and the object store only: reads are the status service's,
which the API forwards to.
"""

from datetime import timedelta

from atelier_shared import BrandBook, ObjectStore, Service, topics
from atelier_uploader.api import Api
from atelier_uploader.ingest import Ingestor
from atelier_uploader.intake import Intake
from atelier_uploader.settings import UploaderSettings


def declare(settings: UploaderSettings) -> Service:
    """The uploader service."""
    store = ObjectStore(settings)
    brands = BrandBook.load(settings.brands_dir)
    ingestor = Ingestor(store, brands, settings.limits, settings.bucket_originals)
    intake = Intake(store, ingestor)

    service = Service(
        "uploader",
        settings,
        host=settings.api_host,
        port=settings.api_port,
        max_body_bytes=settings.max_upload_bytes + 1024**2,
    )
    service.check("store", store.ping)
    concurrency = settings.intake_concurrency
    service.consume(topics.INBOX, intake.drop, publishes=topics.UPLOADED, concurrency=concurrency)
    service.consume(topics.INTAKE, intake.submitted, publishes=topics.UPLOADED, concurrency=concurrency)
    uploads = service.publisher(topics.UPLOADED, by="POST /v1/assets")
    expiry = timedelta(seconds=settings.presign_expiry_s)
    api = Api(ingestor, uploads, store, settings.status_url, brands.names(), expiry)
    service.add(api)
    api.routes(service.http.routes)
    return service
