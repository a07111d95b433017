"""python -m atelier_tagger: run the tagger."""

from atelier_shared import load_settings, run_service
from atelier_tagger.app import build
from atelier_tagger.settings import TaggerSettings


def main() -> None:
    """Run the tagger until SIGTERM or SIGINT."""
    settings = load_settings(TaggerSettings)
    run_service("tagger", settings, lambda: build(settings))


if __name__ == "__main__":
    main()
