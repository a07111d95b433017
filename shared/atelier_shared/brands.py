"""Brand guidelines: one YAML file per brand (deploy/brands/<brand>.yaml), validated at load.

A file names the brand's default style, rules from image tags to style and strength, the tiers it
may use with their latency targets, its export profiles, whether degraded renders are re-rendered,
and an optional signed webhook. See deploy/brands/README.md for the format.
"""

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from limits import parse_many
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, ValidationError, field_validator, model_validator

from atelier_shared.errors import NotAllowed, UnknownBrand, UnknownStyle

TierName = Literal["preview", "production"]
_BRAND_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")

# Tag fields a rule may test (see Tags in proto/atelier/v1/events.proto).
TAG_FIELDS = frozenset(
    {
        "brightness",
        "contrast",
        "colourfulness",
        "orientation",
        "aspect_ratio",
        "sharpness",
        "plain_background",
        "product_shot",
        "transparency",
        "transparent_share",
        "grayscale",
        "saturation",
        "dominant_hue",
        "edge_density",
        "labels",
        # What the classifier saw: a category, its confidence, and the top ImageNet classes' names.
        "category",
        "confidence",
        "subjects",
    }
)

Scalar = bool | int | float | str


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Condition(_Strict):
    """A test of one tag: comparisons, equality, membership, or a label the tag list contains."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    lt: float | None = None
    le: float | None = None
    gt: float | None = None
    ge: float | None = None
    eq: Scalar | None = None
    ne: Scalar | None = None
    in_: list[Scalar] | None = Field(default=None, alias="in")
    contains: str | None = None

    def describe(self, tag: str) -> str:
        """Human-readable form, e.g. "brightness < 0.3"."""
        symbols = {"lt": "<", "le": "<=", "gt": ">", "ge": ">=", "eq": "==", "ne": "!=", "in_": "in"}
        parts = [f"{tag} {symbols[name]} {value}" for name, value in self if value is not None and name in symbols]
        if self.contains is not None:
            parts.append(f"{tag} contains {self.contains!r}")
        return " and ".join(parts)


class Rule(_Strict):
    """When every condition holds, use this style (and strength)."""

    name: str
    when: dict[str, Condition]
    style: str
    strength: float | None = Field(default=None, ge=0.0, le=1.0)

    @field_validator("when", mode="before")
    @classmethod
    def _scalars_mean_equality(cls, value: Any) -> Any:
        if not isinstance(value, dict) or not value:
            raise ValueError("`when` must map at least one tag to a condition")
        return {tag: test if isinstance(test, dict) else {"eq": test} for tag, test in value.items()}

    @field_validator("when")
    @classmethod
    def _known_tags(cls, value: dict[str, Condition]) -> dict[str, Condition]:
        unknown = set(value) - TAG_FIELDS
        if unknown:
            raise ValueError(f"unknown tags {sorted(unknown)}; rules may test {sorted(TAG_FIELDS)}")
        return value


class ExportProfileSpec(_Strict):
    """One rendition: format, longest side (0 = full resolution) and quality."""

    name: str
    format: Literal["webp", "avif", "jpeg", "png"]
    max_side: int = Field(default=0, ge=0, le=16_384)
    quality: int = Field(default=85, ge=1, le=100)


class Webhook(_Strict):
    """Where to POST the exported event, signed with HMAC-SHA256 using the secret in `secret_env`."""

    url: HttpUrl
    secret_env: str


DEFAULT_EXPORT_PROFILES = (
    ExportProfileSpec(name="web", format="webp", max_side=2048, quality=82),
    ExportProfileSpec(name="thumbnail", format="jpeg", max_side=320, quality=85),
    ExportProfileSpec(name="print", format="png", max_side=0),
)
# A preview's one rendition: small and quick to encode and to load, at the fast model's working side.
DEFAULT_PREVIEW_PROFILE = ExportProfileSpec(name="preview", format="webp", max_side=512, quality=80)


class Limits(_Strict):
    """How much a brand may submit over HTTP: a rate per uploader replica, and assets in flight."""

    # Rate limits in the `limits` package's notation, several separated by ";".
    rate: str = "20/second;1200/minute"
    # Assets accepted and not yet exported or failed.
    in_flight: int = Field(default=500, ge=1)

    @field_validator("rate")
    @classmethod
    def _rate(cls, value: str) -> str:
        try:
            parse_many(value)
        except ValueError as exc:
            raise ValueError(f"not a rate like '20/second;1200/minute': {exc}") from None
        return value


class BrandGuidelines(_Strict):
    """One brand's guidelines."""

    brand: str
    display_name: str = ""
    default_style: str
    default_strength: float = Field(default=1.0, ge=0.0, le=1.0)
    # Styles a submitter may request by name; the default and every rule's style are always allowed.
    styles: list[str] = []
    tiers: list[TierName] = ["preview", "production"]
    latency_targets_ms: dict[TierName, int] = {"preview": 5_000, "production": 60_000}
    rules: list[Rule] = []
    export_profiles: list[ExportProfileSpec] = list(DEFAULT_EXPORT_PROFILES)
    # What the preview tier exports instead: one small rendition; print sizes are production work.
    preview_profile: ExportProfileSpec = DEFAULT_PREVIEW_PROFILE
    # Re-render at full fidelity what fail-over served with the fast model.
    rerender: bool = True
    webhook: Webhook | None = None
    limits: Limits = Limits()

    @field_validator("brand")
    @classmethod
    def _brand_id(cls, value: str) -> str:
        if not _BRAND_ID.match(value):
            raise ValueError("use lowercase letters, digits and dashes (it becomes part of object keys)")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "BrandGuidelines":
        if not self.tiers:
            raise ValueError("`tiers` must allow at least one of preview, production")
        missing = [tier for tier in self.tiers if tier not in self.latency_targets_ms]
        if missing:
            raise ValueError(f"`latency_targets_ms` lacks a target for {missing}")
        names = [profile.name for profile in self.export_profiles]
        if len(set(names)) != len(names) or not names:
            raise ValueError(f"export profile names must be unique and non-empty, got {names}")
        return self

    def allowed_styles(self) -> set[str]:
        """Every style this brand may use."""
        return {self.default_style, *self.styles, *(rule.style for rule in self.rules)}

    def check_tier(self, tier: str) -> None:
        """Refuse (NotAllowed) a tier these guidelines do not allow."""
        if tier not in self.tiers:
            raise NotAllowed(f"brand {self.brand!r} does not allow tier {tier!r}; allowed: {self.tiers}")

    def check_style(self, style: str) -> None:
        """Refuse (UnknownStyle) a requested style these guidelines do not allow."""
        if style not in self.allowed_styles():
            styles = sorted(self.allowed_styles())
            raise UnknownStyle(f"style {style!r} is not among brand {self.brand!r}'s styles: {styles}")


class BrandConfigError(ValueError):
    """A brand guidelines file that does not validate; the message names the file and field."""


def load_guidelines(path: Path) -> BrandGuidelines:
    """Read and validate one brand file; the brand id must match the file name."""
    try:
        raw = yaml.safe_load(path.read_text())
        guidelines = BrandGuidelines.model_validate(raw)
    except (OSError, yaml.YAMLError) as exc:
        raise BrandConfigError(f"{path}: {exc}") from exc
    except ValidationError as exc:
        details = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise BrandConfigError(f"{path}: {details}") from exc
    if guidelines.brand != path.stem:
        raise BrandConfigError(f"{path}: brand {guidelines.brand!r} must match the file name {path.stem!r}")
    return guidelines


class BrandBook:
    """Every brand's guidelines from a folder of <brand>.yaml files."""

    def __init__(self, brands: dict[str, BrandGuidelines]) -> None:
        self._brands = brands

    @classmethod
    def load(cls, folder: Path) -> "BrandBook":
        """Load and validate every file; BrandConfigError names the first bad one."""
        if not folder.is_dir():
            raise BrandConfigError(f"brands folder {folder} does not exist (set ATELIER_BRANDS_DIR)")
        files = sorted(folder.glob("*.yaml"))
        if not files:
            raise BrandConfigError(f"no brand guidelines (*.yaml) in {folder}")
        return cls({path.stem: load_guidelines(path) for path in files})

    def get(self, brand: str) -> BrandGuidelines:
        """A brand's guidelines; UnknownBrand when there is no file for it."""
        try:
            return self._brands[brand]
        except KeyError:
            # Never name the known brands: a caller must not learn who else uses this deployment.
            raise UnknownBrand(f"unknown brand {brand!r}") from None

    def names(self) -> list[str]:
        """Every brand id."""
        return sorted(self._brands)
