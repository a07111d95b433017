"""Brand rules: from an image's tags to a style and strength, with the reason in words."""

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from atelier_shared import BrandGuidelines, events
from atelier_shared.brands import Condition


@dataclass(frozen=True)
class StyleChoice:
    """The style chosen for an asset and why."""

    style: str
    strength: float
    rule: str
    reason: str


def tag_value(tags: events.Tags, name: str) -> Any:
    """A tag's value by rule name: a field, labels and subjects as lists, `confidence` the category's."""
    if name == "subjects":
        return [subject.label for subject in tags.subjects]
    if name == "confidence":
        return tags.category_confidence
    value = getattr(tags, name)
    return list(value) if name == "labels" else value


def holds(condition: Condition, value: Any) -> bool:
    """Whether a tag's value satisfies every part of a condition."""
    checks: list[tuple[Any, Callable[[Any, Any], bool]]] = [
        (condition.lt, operator.lt),
        (condition.le, operator.le),
        (condition.gt, operator.gt),
        (condition.ge, operator.ge),
        (condition.eq, operator.eq),
        (condition.ne, operator.ne),
        (condition.in_, lambda tag, options: tag in options),
        (condition.contains, lambda tag, label: isinstance(tag, list) and label in tag),
    ]
    try:
        return all(test(value, bound) for bound, test in checks if bound is not None)
    except TypeError:
        return False  # A comparison that does not apply to this tag's type does not hold.


def _evidence(tags: events.Tags, rule_when: dict[str, Condition]) -> str:
    parts = []
    for tag, condition in rule_when.items():
        value = tag_value(tags, tag)
        shown = f"{value:.3g}" if isinstance(value, float) else repr(value)
        parts.append(f"{condition.describe(tag)} (is {shown})")
    return ", ".join(parts)


def choose_style(guidelines: BrandGuidelines, tags: events.Tags, requested_style: str) -> StyleChoice:
    """A requested style wins; else the first rule whose conditions all hold; else the default."""
    if requested_style:
        guidelines.check_style(requested_style)
        return StyleChoice(requested_style, guidelines.default_strength, "", "requested by the submitter")
    for rule in guidelines.rules:
        if all(holds(condition, tag_value(tags, tag)) for tag, condition in rule.when.items()):
            strength = guidelines.default_strength if rule.strength is None else rule.strength
            return StyleChoice(rule.style, strength, rule.name, f"rule {rule.name!r}: {_evidence(tags, rule.when)}")
    return StyleChoice(guidelines.default_style, guidelines.default_strength, "", "no rule matched: brand default")
