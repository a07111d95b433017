"""python -m atelier_exporter: run the exporter."""

from atelier_exporter.service import declare
from atelier_exporter.settings import ExporterSettings
from atelier_shared import run


def main() -> None:
    """Run the exporter until SIGTERM or SIGINT."""
    run(declare, ExporterSettings)


if __name__ == "__main__":
    main()
