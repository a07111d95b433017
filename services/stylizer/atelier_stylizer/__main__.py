"""python -m atelier_stylizer: run one stylizer pool (ATELIER_STYLIZER_POOL=quality|fast)."""

from atelier_shared import load_settings, run_service
from atelier_stylizer.app import build
from atelier_stylizer.settings import StylizerSettings


def main() -> None:
    """Run the stylizer pool until SIGTERM or SIGINT."""
    settings = load_settings(StylizerSettings)
    run_service("stylizer", settings, lambda: build(settings), **{"atelier.pool": settings.stylizer_pool})


if __name__ == "__main__":
    main()
