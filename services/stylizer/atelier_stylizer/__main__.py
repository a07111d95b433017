"""python -m atelier_stylizer: run one stylizer pool (ATELIER_STYLIZER_POOL=quality|fast)."""

from atelier_shared import run
from atelier_stylizer.service import declare
from atelier_stylizer.settings import StylizerSettings


def main() -> None:
    """Run the stylizer pool until SIGTERM or SIGINT."""
    run(declare, StylizerSettings)


if __name__ == "__main__":
    main()
