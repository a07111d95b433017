"""The uploader: the HTTP API (and the studio's page), the bucket-drop trigger and intake events, each
validated into AssetUploaded.

Accepting uploads depends on Kafka and the object store only: reads are the status service's,
which the API forwards to. The API listens on its own public port behind the key check; health,
readiness and metrics stay on the operations port.
"""

from datetime import timedelta

from atelier_shared import BrandBook, Listener, ObjectStore, Service, topics
from atelier_uploader import contract
from atelier_uploader.access import json_errors, key_check
from atelier_uploader.api import Api
from atelier_uploader.ingest import Ingestor
from atelier_uploader.intake import Intake
from atelier_uploader.keys import KeyRing, KeyStore
from atelier_uploader.settings import UploaderSettings
from atelier_uploader.studio import Studio


def declare(settings: UploaderSettings) -> Service:
    """The uploader service."""
    store = ObjectStore(settings)
    brands = BrandBook.load(settings.brands_dir)
    ingestor = Ingestor(store, brands, settings.limits, settings.bucket_originals)
    keys = KeyRing(KeyStore(store, settings.bucket_keys), settings.key_refresh_s)

    service = Service("uploader", settings)
    service.check("store", store.ping)
    service.add(keys)
    service.check("keys", keys.ready)
    service.background("keys", keys.run)
    uploads = service.publisher(topics.UPLOADED, by="POST /v1/assets")
    expiry = timedelta(seconds=settings.presign_expiry_s)
    api = Api(
        ingestor,
        uploads,
        store,
        settings.status_url,
        brands.names(),
        expiry,
        settings.ingest_deadline_s,
        settings.upload_buffer_bytes,
    )
    service.add(api)
    partly_refused = service.publisher(topics.UPLOADED, by="inbox, partly refused")
    own_buckets = frozenset(settings.buckets())
    intake = Intake(store, ingestor, api.brand_of, partly_refused, settings.bucket_inbox, own_buckets)
    concurrency = settings.intake_concurrency
    service.consume(topics.INBOX, intake.drop, publishes=topics.UPLOADED, concurrency=concurrency)
    service.consume(topics.INTAKE, intake.submitted, publishes=topics.UPLOADED, concurrency=concurrency)
    studio = Studio(api, brands, keys, settings.status_url, settings.trace_query_url, settings.trace_ui_url)
    service.add(studio)
    service.http.on_stop(studio.end_streams)
    contract.register(service.http.routes, [*api.operations(), *studio.operations()])
    studio.page(service.http.routes)
    body_limit = settings.max_upload_bytes + 1024**2
    service.http.expose(Listener(settings.api_host, settings.api_port, body_limit, (json_errors, key_check(keys))))
    return service
