"""python -m atelier_uploader: run the uploader."""

from atelier_shared import load_settings, run_service
from atelier_uploader.app import UploaderApp
from atelier_uploader.settings import UploaderSettings


def main() -> None:
    """Run the uploader until SIGTERM or SIGINT."""
    settings = load_settings(UploaderSettings)
    run_service("uploader", settings, lambda: UploaderApp(settings))


if __name__ == "__main__":
    main()
