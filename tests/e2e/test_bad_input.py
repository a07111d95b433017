"""Bad input on every entry path: a 4xx at the API, a dead-letter record by bucket or event.

Good images sent alongside keep flowing.
"""

import asyncio
import time

import pytest

from atelier_shared import events, topics
from tests.conftest import bad_inputs, jpeg_bytes
from tests.e2e.conftest import Pipeline
from tests.e2e.test_drop_trigger import drop
from tests.kafka import read_topic

pytestmark = pytest.mark.e2e

EXPECTED_API = {"truncated.jpg": 422, "empty.jpg": 400, "notes.jpg": 415, "bomb.png": 413}
EXPECTED_TYPE = {
    "truncated.jpg": "invalid_image",
    "empty.jpg": "invalid_image",
    "notes.jpg": "unsupported_type",
    "bomb.png": "too_large",
}


def test_bad_uploads_are_refused_and_good_ones_flow(pipeline: Pipeline) -> None:
    settings = pipeline.deployment.settings()
    good_ids = []

    # HTTP: a clear 4xx for each, nothing stored or published.
    for name, data in bad_inputs().items():
        code, body = pipeline.submit(data, brand="acme")
        assert code == EXPECTED_API[name], (name, code, body)
        assert body["error"]["code"] and body["error"]["message"], body
        code, body = pipeline.submit(jpeg_bytes(seed=len(good_ids)), brand="acme")
        assert code == 202
        good_ids.append(body["asset_id"])
    code, body = pipeline.submit(jpeg_bytes(), brand="nobody")
    assert code == 422 and body["error"]["code"] == "unknown_brand", body

    # Bucket drop: a dead-letter record per bad object, a good object between each.
    dropped_bad = {}
    for index, (name, data) in enumerate(bad_inputs().items()):
        dropped_bad[drop(pipeline, f"acme/bad-{name}", data)] = name
        good_ids.append(drop(pipeline, f"acme/good-{index}.jpg", jpeg_bytes(seed=100 + index)))

    # Intake event from another system, referencing objects it stored.
    submitted_bad = {}
    for name, data in bad_inputs().items():
        key = f"partner/{name}"
        pipeline.store_for_partner(key, data)
        asset_id = f"partner-{name.replace('.', '-')}"
        pipeline.intake(asset_id, key)
        submitted_bad[asset_id] = name
    pipeline.intake("partner-missing", "partner/none.jpg")
    # Ids another system chose: one no URL path can hold, and one an acme asset already has.
    pipeline.store_for_partner("partner/good.jpg", jpeg_bytes(seed=7))
    pipeline.intake("partner/7", "partner/good.jpg")
    taken = good_ids[0]
    deadline = time.monotonic() + 60
    while pipeline.status(taken) is None:  # The status service knows acme's asset before lumen claims its id.
        assert time.monotonic() < deadline, "the status service never showed the upload"
        time.sleep(0.1)
    pipeline.intake(taken, "partner/good.jpg", brand="lumen")

    expected_dead = {**dropped_bad, **submitted_bad}
    refused_ids = {"partner-missing", "partner/7", taken}
    records = asyncio.run(
        read_topic(
            settings.kafka_bootstrap,
            settings.topics.name(topics.DEAD_LETTER),
            until=lambda found: len(found) >= len(expected_dead) + len(refused_ids),
        )
    )
    dead = {record.key.decode(): events.DeadLettered.FromString(record.value) for record in records}
    assert set(dead) == set(expected_dead) | refused_ids
    assert (dead["partner/7"].error_type, dead[taken].error_type) == ("invalid_event", "invalid_event")
    assert "another brand" in dead[taken].error_message and dead[taken].brand == "lumen"
    for asset_id, name in expected_dead.items():
        letter = dead[asset_id]
        assert letter.error_type == EXPECTED_TYPE[name], (name, letter)
        assert letter.service == "uploader" and letter.error_message
        assert letter.original_topic in {settings.topics.name(topics.INBOX), settings.topics.name(topics.INTAKE)}
        assert letter.original_value and letter.attempts == 1
    assert dead["partner-missing"].error_type == "object_missing"

    # The pipeline kept flowing for the good images, and the bad ones say why in their status.
    final = pipeline.wait_final(good_ids + list(expected_dead))
    assert all(final[asset_id]["stage"] == "exported" for asset_id in good_ids)
    assert final[taken]["brand"] == "acme" and "failure" not in final[taken]  # Lumen's letter never reached it.
    for asset_id, name in expected_dead.items():
        assert final[asset_id]["stage"] == "failed"
        assert final[asset_id]["failure"]["error_type"] == EXPECTED_TYPE[name]
