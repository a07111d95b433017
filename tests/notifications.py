"""Bucket notification records as AWS S3 and Ceph RGW send them (the drop trigger's other sources than MinIO)."""

from urllib.parse import quote_plus


def aws_s3_record(
    key: str, event: str = "ObjectCreated:Put", bucket: str = "inbox", etag: str = "d41d8cd98f00b204e9800998ecf8427e"
) -> dict[str, object]:
    """AWS S3's event record (docs: "Event message structure", version 2.1): no `s3:` prefix, no metadata."""
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "eu-west-1",
        "eventTime": "2026-11-27T05:00:00.000Z",
        "eventName": event,
        "userIdentity": {"principalId": "AWS:EXAMPLE"},
        "requestParameters": {"sourceIPAddress": "203.0.113.7"},
        "responseElements": {
            "x-amz-request-id": "C3D13FE58DE4C810",
            "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S",
        },
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "atelier-inbox",
            "bucket": {"name": bucket, "ownerIdentity": {"principalId": "EXAMPLE"}, "arn": f"arn:aws:s3:::{bucket}"},
            "object": {
                "key": quote_plus(key, safe="/"),  # AWS S3 sends keys URL-encoded, spaces as "+".
                "size": 2048,
                "eTag": etag,
                "sequencer": "0A1B2C3D4E5F678901",
            },
        },
    }


def ceph_rgw_record(key: str, metadata: list[dict[str, str]], event: str = "ObjectCreated:Put") -> dict[str, object]:
    """Ceph RGW's event record (docs: "Event record"): `ceph:s3`, size as a string, metadata as key/val pairs."""
    return {
        "eventVersion": "2.1",
        "eventSource": "ceph:s3",
        "awsRegion": "default",
        "eventTime": "2026-11-27T05:00:00.124724Z",
        "eventName": event,
        "userIdentity": {"principalId": "tester"},
        "requestParameters": {"sourceIPAddress": ""},
        "responseElements": {"x-amz-request-id": "503a4c37.5330.903595", "x-amz-id-2": "14d2-zone1-zonegroup1"},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "atelier-inbox",
            "bucket": {
                "name": "inbox", "ownerIdentity": {"principalId": "tester"}, "arn": "arn:aws:s3:default::inbox",
                "id": "503a4c37.5332.38",
            },
            "object": {
                "key": key, "size": "1024", "eTag": "37b51d194a7513e45b56f6524f2d51f2", "versionId": "",
                "sequencer": "F7E6D75DC742D108", "metadata": metadata, "tags": [],
            },
        },
        "eventId": "",
        "opaqueData": "",
    }  # fmt: skip
