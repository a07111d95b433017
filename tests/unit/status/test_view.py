import os
from pathlib import Path

import pytest

from atelier_shared import AtelierSettings
from atelier_status.view import StatusView


async def test_view_leaves_no_data_folder_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: faust created `<app id>-data/` in the working directory of every status view (tests
    left dozens of them in the checkout), although the table lives in memory. The view now gives
    faust a temporary folder and removes it on stop."""
    monkeypatch.chdir(tmp_path)
    view = StatusView(AtelierSettings())
    datadir = Path(str(view.app.conf.datadir))
    assert tmp_path not in datadir.parents and datadir.is_dir()
    await view.stop()
    assert not datadir.exists()
    assert os.listdir(tmp_path) == []


async def test_the_views_consumer_fetches_with_the_preview_fetch_wait() -> None:
    """Regression: faust fixes its consumer's fetch wait at 1.5 s, and the embedded cluster holds a
    fetch for its whole wait, so an export reached the status view (and the artist) about a second
    late (bench/results/preview-cpu-2core.md, "before"). The view's consumer now waits as configured."""
    view = StatusView(AtelierSettings(kafka_preview_fetch_wait_ms=30))
    try:
        consumer = view.app.consumer._thread._create_worker_consumer(view.app.transport)  # type: ignore[attr-defined]
        assert consumer._fetch_max_wait_ms == 30
    finally:
        await view.stop()
