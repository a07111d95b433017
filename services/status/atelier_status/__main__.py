"""python -m atelier_status: run the status service."""

from atelier_shared import run
from atelier_status.service import declare
from atelier_status.settings import StatusSettings


def main() -> None:
    """Run the status service until SIGTERM or SIGINT."""
    run(declare, StatusSettings)


if __name__ == "__main__":
    main()
