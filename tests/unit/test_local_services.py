"""The local stack's processes: each runs at its spec's CPU priority."""

import os
import time
from pathlib import Path

from atelier_devtools.local.stack import SERVICES, LocalServices, ServiceSpec


def test_a_service_runs_at_its_specs_nice_and_the_quality_pool_yields(tmp_path: Path) -> None:
    """Under a production backlog the quality pool took the cores the preview path waits on: previews'
    p99 read 640-951 ms where the pool at nice 10 read 456-467 (bench/results/preview-cpu-2core.md)."""
    (tmp_path / "report_nice.py").write_text("import os\nprint(os.nice(0))\n")
    spec = ServiceSpec("reporter", "report_nice", nice=7)
    services = LocalServices({}, tmp_path / "logs", specs=(spec,), cwd=tmp_path)
    services.start("reporter")
    try:
        deadline = time.monotonic() + 30
        while "reporter" not in services.died():
            assert time.monotonic() < deadline, "the reporter did not exit"
            time.sleep(0.05)
    finally:
        returncode = services.stop("reporter")
    assert returncode == 0
    assert int(services.log_file("reporter").read_text()) == min(os.nice(0) + 7, 19)
    assert {s.name: s.nice for s in SERVICES if s.nice} == {"stylizer-quality": 10}
