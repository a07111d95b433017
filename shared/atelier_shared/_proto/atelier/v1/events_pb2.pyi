import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Tier(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TIER_UNSPECIFIED: _ClassVar[Tier]
    TIER_PREVIEW: _ClassVar[Tier]
    TIER_PRODUCTION: _ClassVar[Tier]

class ModelTier(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MODEL_TIER_UNSPECIFIED: _ClassVar[ModelTier]
    MODEL_TIER_QUALITY: _ClassVar[ModelTier]
    MODEL_TIER_FAST: _ClassVar[ModelTier]

class Source(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SOURCE_UNSPECIFIED: _ClassVar[Source]
    SOURCE_HTTP: _ClassVar[Source]
    SOURCE_BUCKET_DROP: _ClassVar[Source]
    SOURCE_EVENT: _ClassVar[Source]
TIER_UNSPECIFIED: Tier
TIER_PREVIEW: Tier
TIER_PRODUCTION: Tier
MODEL_TIER_UNSPECIFIED: ModelTier
MODEL_TIER_QUALITY: ModelTier
MODEL_TIER_FAST: ModelTier
SOURCE_UNSPECIFIED: Source
SOURCE_HTTP: Source
SOURCE_BUCKET_DROP: Source
SOURCE_EVENT: Source

class ObjectRef(_message.Message):
    __slots__ = ("bucket", "key", "sha256", "size", "width", "height", "content_type")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    key: str
    sha256: str
    size: int
    width: int
    height: int
    content_type: str
    def __init__(self, bucket: _Optional[str] = ..., key: _Optional[str] = ..., sha256: _Optional[str] = ..., size: _Optional[int] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., content_type: _Optional[str] = ...) -> None: ...

class Timeline(_message.Message):
    __slots__ = ("uploaded_at", "tagged_at", "routed_at", "stylized_at", "exported_at")
    UPLOADED_AT_FIELD_NUMBER: _ClassVar[int]
    TAGGED_AT_FIELD_NUMBER: _ClassVar[int]
    ROUTED_AT_FIELD_NUMBER: _ClassVar[int]
    STYLIZED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPORTED_AT_FIELD_NUMBER: _ClassVar[int]
    uploaded_at: _timestamp_pb2.Timestamp
    tagged_at: _timestamp_pb2.Timestamp
    routed_at: _timestamp_pb2.Timestamp
    stylized_at: _timestamp_pb2.Timestamp
    exported_at: _timestamp_pb2.Timestamp
    def __init__(self, uploaded_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., tagged_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., routed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., stylized_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., exported_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class AssetHeader(_message.Message):
    __slots__ = ("asset_id", "brand", "tier", "requested_style", "source", "source_uri", "original", "timeline")
    ASSET_ID_FIELD_NUMBER: _ClassVar[int]
    BRAND_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_STYLE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_URI_FIELD_NUMBER: _ClassVar[int]
    ORIGINAL_FIELD_NUMBER: _ClassVar[int]
    TIMELINE_FIELD_NUMBER: _ClassVar[int]
    asset_id: str
    brand: str
    tier: Tier
    requested_style: str
    source: Source
    source_uri: str
    original: ObjectRef
    timeline: Timeline
    def __init__(self, asset_id: _Optional[str] = ..., brand: _Optional[str] = ..., tier: _Optional[_Union[Tier, str]] = ..., requested_style: _Optional[str] = ..., source: _Optional[_Union[Source, str]] = ..., source_uri: _Optional[str] = ..., original: _Optional[_Union[ObjectRef, _Mapping]] = ..., timeline: _Optional[_Union[Timeline, _Mapping]] = ...) -> None: ...

class AssetSubmitted(_message.Message):
    __slots__ = ("asset_id", "brand", "tier", "style", "bucket", "key", "reference")
    ASSET_ID_FIELD_NUMBER: _ClassVar[int]
    BRAND_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    STYLE_FIELD_NUMBER: _ClassVar[int]
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    asset_id: str
    brand: str
    tier: Tier
    style: str
    bucket: str
    key: str
    reference: str
    def __init__(self, asset_id: _Optional[str] = ..., brand: _Optional[str] = ..., tier: _Optional[_Union[Tier, str]] = ..., style: _Optional[str] = ..., bucket: _Optional[str] = ..., key: _Optional[str] = ..., reference: _Optional[str] = ...) -> None: ...

class AssetUploaded(_message.Message):
    __slots__ = ("asset",)
    ASSET_FIELD_NUMBER: _ClassVar[int]
    asset: AssetHeader
    def __init__(self, asset: _Optional[_Union[AssetHeader, _Mapping]] = ...) -> None: ...

class PaletteColor(_message.Message):
    __slots__ = ("hex", "share")
    HEX_FIELD_NUMBER: _ClassVar[int]
    SHARE_FIELD_NUMBER: _ClassVar[int]
    hex: str
    share: float
    def __init__(self, hex: _Optional[str] = ..., share: _Optional[float] = ...) -> None: ...

class Tags(_message.Message):
    __slots__ = ("palette", "brightness", "contrast", "colourfulness", "orientation", "aspect_ratio", "sharpness", "plain_background", "product_shot", "transparency", "transparent_share", "grayscale", "saturation", "dominant_hue", "edge_density", "labels", "subjects", "category", "category_confidence")
    PALETTE_FIELD_NUMBER: _ClassVar[int]
    BRIGHTNESS_FIELD_NUMBER: _ClassVar[int]
    CONTRAST_FIELD_NUMBER: _ClassVar[int]
    COLOURFULNESS_FIELD_NUMBER: _ClassVar[int]
    ORIENTATION_FIELD_NUMBER: _ClassVar[int]
    ASPECT_RATIO_FIELD_NUMBER: _ClassVar[int]
    SHARPNESS_FIELD_NUMBER: _ClassVar[int]
    PLAIN_BACKGROUND_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_SHOT_FIELD_NUMBER: _ClassVar[int]
    TRANSPARENCY_FIELD_NUMBER: _ClassVar[int]
    TRANSPARENT_SHARE_FIELD_NUMBER: _ClassVar[int]
    GRAYSCALE_FIELD_NUMBER: _ClassVar[int]
    SATURATION_FIELD_NUMBER: _ClassVar[int]
    DOMINANT_HUE_FIELD_NUMBER: _ClassVar[int]
    EDGE_DENSITY_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    SUBJECTS_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    palette: _containers.RepeatedCompositeFieldContainer[PaletteColor]
    brightness: float
    contrast: float
    colourfulness: float
    orientation: str
    aspect_ratio: float
    sharpness: float
    plain_background: bool
    product_shot: bool
    transparency: bool
    transparent_share: float
    grayscale: bool
    saturation: float
    dominant_hue: float
    edge_density: float
    labels: _containers.RepeatedScalarFieldContainer[str]
    subjects: _containers.RepeatedCompositeFieldContainer[Subject]
    category: str
    category_confidence: float
    def __init__(self, palette: _Optional[_Iterable[_Union[PaletteColor, _Mapping]]] = ..., brightness: _Optional[float] = ..., contrast: _Optional[float] = ..., colourfulness: _Optional[float] = ..., orientation: _Optional[str] = ..., aspect_ratio: _Optional[float] = ..., sharpness: _Optional[float] = ..., plain_background: _Optional[bool] = ..., product_shot: _Optional[bool] = ..., transparency: _Optional[bool] = ..., transparent_share: _Optional[float] = ..., grayscale: _Optional[bool] = ..., saturation: _Optional[float] = ..., dominant_hue: _Optional[float] = ..., edge_density: _Optional[float] = ..., labels: _Optional[_Iterable[str]] = ..., subjects: _Optional[_Iterable[_Union[Subject, _Mapping]]] = ..., category: _Optional[str] = ..., category_confidence: _Optional[float] = ...) -> None: ...

class Subject(_message.Message):
    __slots__ = ("label", "confidence")
    LABEL_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    label: str
    confidence: float
    def __init__(self, label: _Optional[str] = ..., confidence: _Optional[float] = ...) -> None: ...

class AssetTagged(_message.Message):
    __slots__ = ("asset", "tags")
    ASSET_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    asset: AssetHeader
    tags: Tags
    def __init__(self, asset: _Optional[_Union[AssetHeader, _Mapping]] = ..., tags: _Optional[_Union[Tags, _Mapping]] = ...) -> None: ...

class ExportProfile(_message.Message):
    __slots__ = ("name", "format", "max_side", "quality")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    MAX_SIDE_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    name: str
    format: str
    max_side: int
    quality: int
    def __init__(self, name: _Optional[str] = ..., format: _Optional[str] = ..., max_side: _Optional[int] = ..., quality: _Optional[int] = ...) -> None: ...

class RouteDecision(_message.Message):
    __slots__ = ("style", "strength", "model_tier", "reason", "rule", "degraded", "expected_wait_ms", "target_ms", "export_profiles", "rerender")
    STYLE_FIELD_NUMBER: _ClassVar[int]
    STRENGTH_FIELD_NUMBER: _ClassVar[int]
    MODEL_TIER_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    DEGRADED_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_WAIT_MS_FIELD_NUMBER: _ClassVar[int]
    TARGET_MS_FIELD_NUMBER: _ClassVar[int]
    EXPORT_PROFILES_FIELD_NUMBER: _ClassVar[int]
    RERENDER_FIELD_NUMBER: _ClassVar[int]
    style: str
    strength: float
    model_tier: ModelTier
    reason: str
    rule: str
    degraded: bool
    expected_wait_ms: float
    target_ms: float
    export_profiles: _containers.RepeatedCompositeFieldContainer[ExportProfile]
    rerender: bool
    def __init__(self, style: _Optional[str] = ..., strength: _Optional[float] = ..., model_tier: _Optional[_Union[ModelTier, str]] = ..., reason: _Optional[str] = ..., rule: _Optional[str] = ..., degraded: _Optional[bool] = ..., expected_wait_ms: _Optional[float] = ..., target_ms: _Optional[float] = ..., export_profiles: _Optional[_Iterable[_Union[ExportProfile, _Mapping]]] = ..., rerender: _Optional[bool] = ...) -> None: ...

class StyleRequested(_message.Message):
    __slots__ = ("asset", "route")
    ASSET_FIELD_NUMBER: _ClassVar[int]
    ROUTE_FIELD_NUMBER: _ClassVar[int]
    asset: AssetHeader
    route: RouteDecision
    def __init__(self, asset: _Optional[_Union[AssetHeader, _Mapping]] = ..., route: _Optional[_Union[RouteDecision, _Mapping]] = ...) -> None: ...

class StylizeTimings(_message.Message):
    __slots__ = ("queue_wait_ms", "decode_ms", "inference_ms", "encode_ms", "total_ms")
    QUEUE_WAIT_MS_FIELD_NUMBER: _ClassVar[int]
    DECODE_MS_FIELD_NUMBER: _ClassVar[int]
    INFERENCE_MS_FIELD_NUMBER: _ClassVar[int]
    ENCODE_MS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_MS_FIELD_NUMBER: _ClassVar[int]
    queue_wait_ms: float
    decode_ms: float
    inference_ms: float
    encode_ms: float
    total_ms: float
    def __init__(self, queue_wait_ms: _Optional[float] = ..., decode_ms: _Optional[float] = ..., inference_ms: _Optional[float] = ..., encode_ms: _Optional[float] = ..., total_ms: _Optional[float] = ...) -> None: ...

class AssetStylized(_message.Message):
    __slots__ = ("asset", "route", "model", "backend", "stylized", "timings", "batch_size", "cache_hit")
    ASSET_FIELD_NUMBER: _ClassVar[int]
    ROUTE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    STYLIZED_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    CACHE_HIT_FIELD_NUMBER: _ClassVar[int]
    asset: AssetHeader
    route: RouteDecision
    model: str
    backend: str
    stylized: ObjectRef
    timings: StylizeTimings
    batch_size: int
    cache_hit: bool
    def __init__(self, asset: _Optional[_Union[AssetHeader, _Mapping]] = ..., route: _Optional[_Union[RouteDecision, _Mapping]] = ..., model: _Optional[str] = ..., backend: _Optional[str] = ..., stylized: _Optional[_Union[ObjectRef, _Mapping]] = ..., timings: _Optional[_Union[StylizeTimings, _Mapping]] = ..., batch_size: _Optional[int] = ..., cache_hit: _Optional[bool] = ...) -> None: ...

class Rendition(_message.Message):
    __slots__ = ("profile", "object")
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    OBJECT_FIELD_NUMBER: _ClassVar[int]
    profile: str
    object: ObjectRef
    def __init__(self, profile: _Optional[str] = ..., object: _Optional[_Union[ObjectRef, _Mapping]] = ...) -> None: ...

class WebhookDelivery(_message.Message):
    __slots__ = ("url", "status_code", "attempts", "error")
    URL_FIELD_NUMBER: _ClassVar[int]
    STATUS_CODE_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    url: str
    status_code: int
    attempts: int
    error: str
    def __init__(self, url: _Optional[str] = ..., status_code: _Optional[int] = ..., attempts: _Optional[int] = ..., error: _Optional[str] = ...) -> None: ...

class AssetExported(_message.Message):
    __slots__ = ("asset", "route", "model", "renditions", "webhook")
    ASSET_FIELD_NUMBER: _ClassVar[int]
    ROUTE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    RENDITIONS_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_FIELD_NUMBER: _ClassVar[int]
    asset: AssetHeader
    route: RouteDecision
    model: str
    renditions: _containers.RepeatedCompositeFieldContainer[Rendition]
    webhook: WebhookDelivery
    def __init__(self, asset: _Optional[_Union[AssetHeader, _Mapping]] = ..., route: _Optional[_Union[RouteDecision, _Mapping]] = ..., model: _Optional[str] = ..., renditions: _Optional[_Iterable[_Union[Rendition, _Mapping]]] = ..., webhook: _Optional[_Union[WebhookDelivery, _Mapping]] = ...) -> None: ...

class WebhookRetryScheduled(_message.Message):
    __slots__ = ("asset_id", "exported", "attempts", "first_attempt_at", "due_at", "retry_tier")
    ASSET_ID_FIELD_NUMBER: _ClassVar[int]
    EXPORTED_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    FIRST_ATTEMPT_AT_FIELD_NUMBER: _ClassVar[int]
    DUE_AT_FIELD_NUMBER: _ClassVar[int]
    RETRY_TIER_FIELD_NUMBER: _ClassVar[int]
    asset_id: str
    exported: AssetExported
    attempts: int
    first_attempt_at: _timestamp_pb2.Timestamp
    due_at: _timestamp_pb2.Timestamp
    retry_tier: int
    def __init__(self, asset_id: _Optional[str] = ..., exported: _Optional[_Union[AssetExported, _Mapping]] = ..., attempts: _Optional[int] = ..., first_attempt_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., due_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., retry_tier: _Optional[int] = ...) -> None: ...

class WebhookReported(_message.Message):
    __slots__ = ("asset_id", "brand", "delivery_id", "delivery", "delivered", "attempted_at", "next_attempt_at")
    ASSET_ID_FIELD_NUMBER: _ClassVar[int]
    BRAND_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_ID_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_FIELD_NUMBER: _ClassVar[int]
    DELIVERED_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTED_AT_FIELD_NUMBER: _ClassVar[int]
    NEXT_ATTEMPT_AT_FIELD_NUMBER: _ClassVar[int]
    asset_id: str
    brand: str
    delivery_id: str
    delivery: WebhookDelivery
    delivered: bool
    attempted_at: _timestamp_pb2.Timestamp
    next_attempt_at: _timestamp_pb2.Timestamp
    def __init__(self, asset_id: _Optional[str] = ..., brand: _Optional[str] = ..., delivery_id: _Optional[str] = ..., delivery: _Optional[_Union[WebhookDelivery, _Mapping]] = ..., delivered: _Optional[bool] = ..., attempted_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., next_attempt_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class DeadLettered(_message.Message):
    __slots__ = ("asset_id", "brand", "tier", "service", "original_topic", "partition", "offset", "original_key", "original_value", "original_size", "original_sha256", "original_omitted", "error_type", "error_message", "attempts", "traceparent", "failed_at")
    ASSET_ID_FIELD_NUMBER: _ClassVar[int]
    BRAND_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    ORIGINAL_TOPIC_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    ORIGINAL_KEY_FIELD_NUMBER: _ClassVar[int]
    ORIGINAL_VALUE_FIELD_NUMBER: _ClassVar[int]
    ORIGINAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    ORIGINAL_SHA256_FIELD_NUMBER: _ClassVar[int]
    ORIGINAL_OMITTED_FIELD_NUMBER: _ClassVar[int]
    ERROR_TYPE_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    TRACEPARENT_FIELD_NUMBER: _ClassVar[int]
    FAILED_AT_FIELD_NUMBER: _ClassVar[int]
    asset_id: str
    brand: str
    tier: Tier
    service: str
    original_topic: str
    partition: int
    offset: int
    original_key: bytes
    original_value: bytes
    original_size: int
    original_sha256: str
    original_omitted: bool
    error_type: str
    error_message: str
    attempts: int
    traceparent: str
    failed_at: _timestamp_pb2.Timestamp
    def __init__(self, asset_id: _Optional[str] = ..., brand: _Optional[str] = ..., tier: _Optional[_Union[Tier, str]] = ..., service: _Optional[str] = ..., original_topic: _Optional[str] = ..., partition: _Optional[int] = ..., offset: _Optional[int] = ..., original_key: _Optional[bytes] = ..., original_value: _Optional[bytes] = ..., original_size: _Optional[int] = ..., original_sha256: _Optional[str] = ..., original_omitted: _Optional[bool] = ..., error_type: _Optional[str] = ..., error_message: _Optional[str] = ..., attempts: _Optional[int] = ..., traceparent: _Optional[str] = ..., failed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PoolReported(_message.Message):
    __slots__ = ("pool", "instance", "item_service_ms", "items_per_second", "mean_batch_size", "buffered", "paused_partitions", "reported_at")
    POOL_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_FIELD_NUMBER: _ClassVar[int]
    ITEM_SERVICE_MS_FIELD_NUMBER: _ClassVar[int]
    ITEMS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    MEAN_BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    BUFFERED_FIELD_NUMBER: _ClassVar[int]
    PAUSED_PARTITIONS_FIELD_NUMBER: _ClassVar[int]
    REPORTED_AT_FIELD_NUMBER: _ClassVar[int]
    pool: str
    instance: str
    item_service_ms: float
    items_per_second: float
    mean_batch_size: float
    buffered: int
    paused_partitions: int
    reported_at: _timestamp_pb2.Timestamp
    def __init__(self, pool: _Optional[str] = ..., instance: _Optional[str] = ..., item_service_ms: _Optional[float] = ..., items_per_second: _Optional[float] = ..., mean_batch_size: _Optional[float] = ..., buffered: _Optional[int] = ..., paused_partitions: _Optional[int] = ..., reported_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
