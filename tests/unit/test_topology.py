"""The README's topic table is what the services declare: a change to a declaration must reach the docs."""

from atelier_devtools.topology import declared_services, section
from tests.conftest import BRANDS, REPO


def test_readme_topic_table_matches_the_declarations() -> None:
    expected = section(declared_services(BRANDS))
    assert expected in (REPO / "README.md").read_text(), "the README's topic table is stale: run `make topology`"


def test_every_topic_is_published_and_consumed_by_someone() -> None:
    services = declared_services(BRANDS)
    for row in section(services).splitlines()[3:-1]:
        _, topic, _, published, consumed, _ = row.split("|")
        assert published.strip() and consumed.strip(), topic
