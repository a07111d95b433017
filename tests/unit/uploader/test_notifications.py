"""MinIO notifications and the brand, tier and style of a dropped object."""

import json

import pytest

from atelier_devtools.local.notifications import minio_notification
from atelier_shared import InvalidEvent, events
from atelier_uploader.notifications import drop_request, parse_notification
from tests.notifications import aws_s3_record, ceph_rgw_record


def notification(key: str, metadata: dict[str, str] | None = None) -> dict[str, object]:
    _, value = minio_notification("inbox", key, 123, "abc", "image/jpeg", metadata)
    return json.loads(value)  # type: ignore[no-any-return]


def test_minio_notification_is_parsed_with_its_url_encoded_key() -> None:
    [item] = parse_notification(notification("acme/summer shots/hero+1.jpg", {"style": "tiles"}))
    assert (item.bucket, item.key, item.size, item.etag) == ("inbox", "acme/summer shots/hero+1.jpg", 123, "abc")
    assert item.metadata["style"] == "tiles"


def test_other_events_are_ignored_and_garbage_refused() -> None:
    deleted = notification("acme/x.jpg")
    deleted["Records"][0]["eventName"] = "s3:ObjectRemoved:Delete"  # type: ignore[index]
    assert parse_notification(deleted) == []
    with pytest.raises(InvalidEvent):
        parse_notification({"Records": [{"eventName": "s3:ObjectCreated:Put"}]})
    with pytest.raises(InvalidEvent):
        parse_notification(["not", "a", "notification"])


@pytest.mark.parametrize(
    "event", ["s3:ObjectCreated:PutTagging", "s3:ObjectCreated:DeleteTagging", "s3:ObjectCreated:PutRetention"]
)
def test_a_change_to_an_objects_tags_or_retention_is_not_a_new_upload(event: str) -> None:
    """Regression: every `ObjectCreated:*` event counted as an upload, and MinIO announces tagging,
    retention and legal holds under that name too: a system tagging a dropped file as processed ran
    the whole pipeline again on it (same etag, same asset: re-exported, its webhook sent again)."""
    tagged = notification("acme/x.jpg")
    tagged["Records"][0]["eventName"] = event  # type: ignore[index]
    assert parse_notification(tagged) == []
    for created in ("Put", "Post", "Copy", "CompleteMultipartUpload"):
        assert len(parse_notification({"Records": [aws_s3_record("acme/x.jpg", f"ObjectCreated:{created}")]})) == 1


def test_brand_and_tier_from_key_or_metadata() -> None:
    [by_key] = parse_notification(notification("acme/preview/a.jpg"))
    assert drop_request(by_key) == drop_request(by_key)
    assert (drop_request(by_key).brand, drop_request(by_key).tier) == ("acme", events.TIER_PREVIEW)
    [by_metadata] = parse_notification(notification("a.jpg", {"brand": "lumen", "tier": "production"}))
    assert (drop_request(by_metadata).brand, drop_request(by_metadata).tier) == ("lumen", events.TIER_PRODUCTION)
    [nameless] = parse_notification(notification("loose.jpg"))
    with pytest.raises(InvalidEvent, match="no brand"):
        drop_request(nameless)


def test_aws_s3_and_ceph_rgw_records_are_parsed_like_minios() -> None:
    """Regression: only MinIO's `s3:ObjectCreated:*` names were taken, so AWS S3's and current Ceph
    RGW's `ObjectCreated:*` records were ignored and their objects silently never ingested."""
    [aws] = parse_notification({"Records": [aws_s3_record("acme/preview/summer shots/hero+1.jpg")]})
    assert (aws.bucket, aws.key, aws.size, aws.metadata) == ("inbox", "acme/preview/summer shots/hero+1.jpg", 2048, {})
    assert (drop_request(aws).brand, drop_request(aws).tier) == ("acme", events.TIER_PREVIEW)
    metadata = [{"key": "x-amz-meta-brand", "val": "lumen"}, {"key": "x-amz-meta-style", "val": "tiles"}]
    for name in ("ObjectCreated:Put", "s3:ObjectCreated:CompleteMultipartUpload"):
        [ceph] = parse_notification({"Records": [ceph_rgw_record("incoming/banner.jpg", metadata, name)]})
        assert (ceph.key, ceph.size, ceph.etag) == ("incoming/banner.jpg", 1024, "37b51d194a7513e45b56f6524f2d51f2")
        assert (drop_request(ceph).brand, drop_request(ceph).style) == ("lumen", "tiles")
    removed = [
        aws_s3_record("acme/x.jpg", "ObjectRemoved:Delete"),
        ceph_rgw_record("acme/y.jpg", [], "ObjectRemoved:Delete"),
    ]
    assert parse_notification({"Records": removed}) == []


@pytest.mark.parametrize(
    "record",
    [
        {"eventName": "s3:ObjectCreated:Put", "s3": {"bucket": {"name": "inbox"}, "object": ["acme/x.jpg"]}},
        {
            "eventName": "s3:ObjectCreated:Put",
            "s3": {"bucket": {"name": "inbox"}, "object": {"key": "a/x", "size": 1e400}},
        },
    ],
)
def test_a_malformed_record_is_an_invalid_event(record: dict[str, object]) -> None:
    """Regression: an `object` that is a list (AttributeError) or a size of 1e400 (OverflowError) escaped
    as themselves, and their dead letters named the wrong kind of error."""
    with pytest.raises(InvalidEvent):
        parse_notification({"Records": [record]})


def test_a_record_that_does_not_parse_is_an_invalid_event_whatever_the_parser_raises() -> None:
    """Regression: JSON nested 100,000 deep raised RecursionError, which only DecodeError, UnicodeDecodeError
    and ValueError were caught around: the uploader's fetch loop died on the inbox record and, restarted,
    fetched it again."""
    from atelier_shared import topics

    with pytest.raises(InvalidEvent):
        topics.INBOX.decode(b"[" * 100_000 + b"]" * 100_000)
    with pytest.raises(InvalidEvent):
        topics.INTAKE.decode(b"\x0a\xff\xff\xff\xff\x0f")
