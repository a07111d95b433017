"""python -m atelier_uploader: run the uploader."""

from atelier_shared import run
from atelier_uploader.service import declare
from atelier_uploader.settings import UploaderSettings


def main() -> None:
    """Run the uploader until SIGTERM or SIGINT."""
    run(declare, UploaderSettings)


if __name__ == "__main__":
    main()
