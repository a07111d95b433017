"""python -m atelier_exporter: run the exporter."""

from atelier_exporter.app import ExporterService
from atelier_exporter.settings import ExporterSettings
from atelier_shared import load_settings, run_service


def main() -> None:
    """Run the exporter until SIGTERM or SIGINT."""
    settings = load_settings(ExporterSettings)
    run_service("exporter", settings, lambda: ExporterService(settings))


if __name__ == "__main__":
    main()
