"""Which fetch wait a consumer gets: the preview path's for consumers of its topics, else the general one."""

from atelier_shared import AtelierSettings, topics
from atelier_shared.runtime.consumer import fetch_wait_ms

SETTINGS = AtelierSettings(kafka_fetch_wait_ms=500, kafka_preview_fetch_wait_ms=25)


def test_consumers_on_the_preview_path_wait_briefly_the_rest_long() -> None:
    assert fetch_wait_ms(SETTINGS, [topics.UPLOADED]) == 25
    assert fetch_wait_ms(SETTINGS, [topics.STYLIZE_PREVIEW, topics.STYLIZE_FAST]) == 25  # The fast pool.
    assert fetch_wait_ms(SETTINGS, [topics.STYLIZE_QUALITY, topics.STYLIZE_RERENDER]) == 500
    assert fetch_wait_ms(SETTINGS, [topics.EXPORTED]) == 500  # Webhooks and re-renders: off the path.
    assert fetch_wait_ms(SETTINGS, list(topics.WEBHOOK_RETRIES)) == 500
