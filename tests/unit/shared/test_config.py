"""Settings, brand guidelines and the topic map: validated at once, errors that name what to fix."""

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from atelier_shared import BrandBook, BrandConfigError, UnknownBrand, events, topics
from atelier_shared.brands import Limits
from atelier_shared.settings import AtelierSettings, SettingsError, load_settings
from tests.conftest import BRANDS, REPO


def test_bad_setting_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATELIER_KAFKA_BOOTSTRAP", "not a host list")
    monkeypatch.setenv("ATELIER_S3_ENDPOINT", "ftp://nope")
    with pytest.raises(SettingsError) as raised:
        load_settings(AtelierSettings)
    message = str(raised.value)
    assert "ATELIER_KAFKA_BOOTSTRAP" in message and "ATELIER_S3_ENDPOINT" in message


def test_settings_are_frozen() -> None:
    settings = AtelierSettings(_env_file=None)  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="frozen"):
        settings.topic_prefix = "other."  # type: ignore[misc]


def test_shipped_brands_load() -> None:
    book = BrandBook.load(BRANDS)
    assert book.names() == ["acme", "lumen"]
    acme = book.get("acme")
    assert acme.allowed_styles() == {"brush", "tiles", "udnie"}
    assert acme.rules[0].when["category"].eq == "footwear" and acme.rules[0].when["confidence"].ge == 0.4
    assert acme.rules[2].when["product_shot"].eq is True
    with pytest.raises(UnknownBrand) as refused:
        book.get("nobody")
    assert "acme" not in str(refused.value) and "lumen" not in str(refused.value)  # Never names other brands.
    assert acme.limits.in_flight == 500


def test_a_brands_rate_limit_must_parse() -> None:
    with pytest.raises(ValueError, match="not a rate"):
        Limits(rate="lots")
    assert Limits(rate="5/second;100/hour").rate == "5/second;100/hour"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("brand: broken\ndefault_style: x\nrules:\n  - {name: r, when: {shine: 1}, style: x}\n", "unknown tags"),
        ("brand: broken\ndefault_style: x\ntiers: [production]\nlatency_targets_ms: {preview: 1}\n", "production"),
        ("brand: other\ndefault_style: x\n", "must match the file name"),
        ("brand: broken\ndefault_style: x\nexport_profiles: [{name: web, format: gif}]\n", "format"),
    ],
)
def test_invalid_brand_file_names_file_and_field(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    with pytest.raises(BrandConfigError) as raised:
        BrandBook.load(tmp_path)
    assert "broken.yaml" in str(raised.value) and fragment in str(raised.value)


def test_every_topic_has_one_message_type_and_a_unique_name() -> None:
    names = topics.Topics("p.").all_names()
    assert len(names) == len(set(names))
    for spec in topics.ALL:
        if spec is not topics.INBOX:  # MinIO's own JSON; every other topic carries one past-tense event.
            assert spec.message.endswith(("ed", "Lettered")), spec
            message = getattr(events, spec.message)
            assert isinstance(spec.decode(message().SerializeToString()), message)


def test_generated_protobuf_code_is_fresh(tmp_path: Path) -> None:
    """Regenerating from proto/ must reproduce the committed code exactly (run `make proto` if not)."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{REPO / 'proto'}",
            f"--python_out={tmp_path}",
            f"--pyi_out={tmp_path}",
            str(REPO / "proto/atelier/v1/events.proto"),
        ],
        check=True,
    )
    committed = REPO / "shared/atelier_shared/_proto/atelier/v1"
    for name in ("events_pb2.py", "events_pb2.pyi"):
        assert (tmp_path / "atelier/v1" / name).read_text() == (committed / name).read_text(), (
            f"{name} is stale: run make proto"
        )
