"""python -m atelier_tagger: run the tagger."""

from atelier_shared import run
from atelier_tagger.service import declare
from atelier_tagger.settings import TaggerSettings


def main() -> None:
    """Run the tagger until SIGTERM or SIGINT."""
    run(declare, TaggerSettings)


if __name__ == "__main__":
    main()
