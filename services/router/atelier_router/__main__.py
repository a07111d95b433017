"""python -m atelier_router: run the style router."""

from atelier_router.service import declare
from atelier_router.settings import RouterSettings
from atelier_shared import run


def main() -> None:
    """Run the router until SIGTERM or SIGINT."""
    run(declare, RouterSettings)


if __name__ == "__main__":
    main()
