"""MinIO's bucket notification records, for the embedded default (moto does not publish them).

In production MinIO publishes these itself to the inbox topic (MINIO_NOTIFY_KAFKA_*); locally,
`atelier drop` and the tests publish exactly what MinIO would: S3 event JSON with the object key
URL-encoded, Kafka record key "bucket/object".
"""

import json
from datetime import UTC, datetime
from urllib.parse import quote


def minio_notification(
    bucket: str, key: str, size: int, etag: str, content_type: str, metadata: dict[str, str] | None = None
) -> tuple[bytes, bytes]:
    """(record key, record value) of an s3:ObjectCreated:Put notification as MinIO publishes it."""
    now = datetime.now(UTC)
    user_metadata = {"content-type": content_type}
    user_metadata.update({f"X-Amz-Meta-{name.title()}": value for name, value in (metadata or {}).items()})
    record = {
        "eventVersion": "2.0",
        "eventSource": "minio:s3",
        "awsRegion": "",
        "eventTime": now.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "eventName": "s3:ObjectCreated:Put",
        "userIdentity": {"principalId": "atelier"},
        "requestParameters": {"principalId": "atelier", "region": "", "sourceIPAddress": "127.0.0.1"},
        "responseElements": {"x-amz-id-2": "", "x-amz-request-id": "", "x-minio-origin-endpoint": ""},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "Config",
            "bucket": {"name": bucket, "ownerIdentity": {"principalId": "atelier"}, "arn": f"arn:aws:s3:::{bucket}"},
            "object": {
                "key": quote(key, safe=""),
                "size": size,
                "eTag": etag,
                "contentType": content_type,
                "userMetadata": user_metadata,
                "sequencer": format(int(now.timestamp() * 1e9), "X"),
            },
        },
        "source": {"host": "127.0.0.1", "port": "", "userAgent": "atelier"},
    }
    value = {"EventName": "s3:ObjectCreated:Put", "Key": f"{bucket}/{key}", "Records": [record]}
    return f"{bucket}/{key}".encode(), json.dumps(value).encode()
