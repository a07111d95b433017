"""The status feed: each brand's changes to its listeners, and what happens to one that stalls."""

import asyncio

from atelier_status import feed
from atelier_status.feed import Feed


async def test_listeners_hear_their_brand_only_in_order() -> None:
    changes = Feed()
    with changes.listen("acme") as acme, changes.listen("lumen") as lumen:
        changes.publish("acme", {"asset_id": "a", "stage": "uploaded"})
        changes.publish("lumen", {"asset_id": "b", "stage": "uploaded"})
        changes.publish("acme", {"asset_id": "a", "stage": "tagged"})
        first, second = await acme.next(), await acme.next()
        assert first is not None and second is not None
        assert [first[1]["stage"], second[1]["stage"]] == ["uploaded", "tagged"] and first[0] < second[0]
        only = await lumen.next()
        assert only is not None and only[1]["asset_id"] == "b" and lumen.changes.empty()
    assert changes.listeners("acme") == 0


async def test_a_stalled_listener_is_cut_off_not_buffered_without_bound() -> None:
    """A client that stops reading must not make the status service hold every change for it."""
    changes = Feed()
    with changes.listen("acme") as stalled, changes.listen("acme") as reading:
        for number in range(feed.BACKLOG + 5):
            changes.publish("acme", {"asset_id": "a", "n": number})
            await reading.next()
        assert await stalled.next() is None  # Its stream ends at once; it reconnects from a snapshot.
        assert changes.listeners("acme") == 1


async def test_closing_ends_every_stream_and_refuses_new_ones() -> None:
    changes = Feed()
    with changes.listen("acme") as listener:
        waiting = asyncio.create_task(listener.next())
        await asyncio.sleep(0)
        await changes.close()
        assert await asyncio.wait_for(waiting, 1) is None
    with changes.listen("acme") as late:
        assert await asyncio.wait_for(late.next(), 1) is None
