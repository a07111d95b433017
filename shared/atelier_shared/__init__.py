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
    InferenceFailed,
    InvalidEvent,
    InvalidImage,
    InvalidModel,
    NotAllowed,
    ObjectMissing,
    PermanentError,
    PublishRefused,
    StoreUnavailable,
    TransientError,
    UnknownBrand,
    UnknownStyle,
    UnsupportedImageType,
)
from atelier_shared.logging import bind_asset, configure_logging, get_logger
from atelier_shared.metrics import STAGE_SECONDS
from atelier_shared.runtime.delivery import Delivery, Outgoing
from atelier_shared.runtime.http import Listener
from atelier_shared.runtime.producer import EventProducer
from atelier_shared.runtime.retrying import hold, kafka_retriable
from atelier_shared.runtime.scheduling import BatchPolicy
from atelier_shared.runtime.service import Component, Publisher, Service, run, serve
from atelier_shared.runtime.subscription import Choice, Options, Produced, Subscription
from atelier_shared.settings import AtelierSettings, HttpEndpoint, SettingsError, load_settings
from atelier_shared.storage import ObjectStore, StoredObject, sha256_hex
from atelier_shared.topics import Topics, TopicSpec
from atelier_shared.tracing import configure_tracing, tracer

__all__ = [
    "STAGE_SECONDS",
    "AtelierError",
    "AtelierSettings",
    "BatchPolicy",
    "BrandBook",
    "BrandConfigError",
    "BrandGuidelines",
    "BrokerUnavailable",
    "Choice",
    "Component",
    "Delivery",
    "EventProducer",
    "ExportProfileSpec",
    "HttpEndpoint",
    "ImageTooLarge",
    "InvalidEvent",
    "InvalidImage",
    "InferenceFailed",
    "InvalidModel",
    "Listener",
    "NotAllowed",
    "ObjectMissing",
    "ObjectStore",
    "Options",
    "Outgoing",
    "PermanentError",
    "Produced",
    "PublishRefused",
    "Publisher",
    "Rule",
    "Service",
    "SettingsError",
    "StoreUnavailable",
    "StoredObject",
    "Subscription",
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
    "hold",
    "kafka_retriable",
    "load_settings",
    "run",
    "serve",
    "sha256_hex",
    "topics",
    "tracer",
]
