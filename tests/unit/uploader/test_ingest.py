from pathlib import Path

import pytest

from atelier_shared import BrandBook, ObjectStore
from atelier_shared.images import ImageLimits
from atelier_shared.settings import AtelierSettings
from atelier_uploader.ingest import Ingestor

BRANDS = Path(__file__).parents[3] / "deploy" / "brands"


def test_validations_at_once_follow_the_cpus_the_process_may_use(monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: the uploader ran one validation per host core (os.cpu_count()), so in a container
    limited to 2 CPUs on a 64-core node, 64 decodes of up to hundreds of MB each ran at once against a
    memory limit sized for 2. It now counts the CPUs the process may use; joblib reads the cgroup CPU
    limit, and LOKY_MAX_CPU_COUNT, which stands in for one here."""
    monkeypatch.setenv("LOKY_MAX_CPU_COUNT", "1")
    ingestor = Ingestor(ObjectStore(AtelierSettings()), BrandBook.load(BRANDS), ImageLimits(), "originals")
    assert ingestor.validation_slots == 1
