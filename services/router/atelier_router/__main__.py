"""python -m atelier_router: run the style router."""

from atelier_router.app import build
from atelier_router.settings import RouterSettings
from atelier_shared import load_settings, run_service


def main() -> None:
    """Run the router until SIGTERM or SIGINT."""
    settings = load_settings(RouterSettings)
    run_service("router", settings, lambda: build(settings))


if __name__ == "__main__":
    main()
