"""Atelier's core library: the front door. Services import from here.

It imports no service. The optional part with its own dependencies is imported by module:
`atelier_shared.images` (extra "images": Pillow, NumPy).
"""

from atelier_shared import assets, events, topics
from atelier_shared.brands import BrandBook, BrandConfigError, BrandGuidelines, ExportProfileSpec, Rule
from atelier_shared.errors import (
    AtelierError,
    BrokerUnavailable,
    ImageTooLarge,
    InvalidEvent,
    InvalidImage,
    InvalidModel,
    NotAllowed,
    ObjectMissing,
    PermanentError,
    StoreUnavailable,
    TransientError,
    UnknownBrand,
    UnknownStyle,
    UnsupportedImageType,
)
from atelier_shared.kafka import Delivery, EventProducer, Outgoing
from atelier_shared.logging import bind_asset, configure_logging, get_logger
from atelier_shared.metrics import STAGE_SECONDS, OpsServer
from atelier_shared.runtime import BatchHandler, ConsumerConfig, ConsumerRuntime, Outcome, per_record
from atelier_shared.scheduling import BatchPolicy
from atelier_shared.service import Lifecycle, PipelineService, run_service, serve
from atelier_shared.settings import AtelierSettings, SettingsError, load_settings
from atelier_shared.storage import ObjectStore, StoredObject, sha256_hex
from atelier_shared.topics import Topics, TopicSpec
from atelier_shared.tracing import configure_tracing, tracer

__all__ = [
    "STAGE_SECONDS",
    "AtelierError",
    "AtelierSettings",
    "BatchHandler",
    "BatchPolicy",
    "BrandBook",
    "BrandConfigError",
    "BrandGuidelines",
    "BrokerUnavailable",
    "ConsumerConfig",
    "ConsumerRuntime",
    "Delivery",
    "EventProducer",
    "ExportProfileSpec",
    "ImageTooLarge",
    "InvalidEvent",
    "InvalidImage",
    "InvalidModel",
    "Lifecycle",
    "NotAllowed",
    "ObjectMissing",
    "ObjectStore",
    "OpsServer",
    "Outcome",
    "Outgoing",
    "PermanentError",
    "PipelineService",
    "Rule",
    "SettingsError",
    "StoreUnavailable",
    "StoredObject",
    "TopicSpec",
    "Topics",
    "TransientError",
    "UnknownBrand",
    "UnknownStyle",
    "UnsupportedImageType",
    "assets",
    "bind_asset",
    "configure_logging",
    "configure_tracing",
    "events",
    "get_logger",
    "load_settings",
    "per_record",
    "run_service",
    "serve",
    "sha256_hex",
    "topics",
    "tracer",
]
