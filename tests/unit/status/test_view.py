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
