"""The exporter's pure logic: which renditions, the exported event, and the artist's waits."""

from atelier_shared import ExportProfileSpec, events
from atelier_shared.brands import DEFAULT_EXPORT_PROFILES


def profiles_for(route: events.RouteDecision) -> list[events.ExportProfile]:
    """The profiles the router chose, or the defaults for events that carry none."""
    if route.export_profiles:
        return list(route.export_profiles)
    return [_as_event(spec) for spec in DEFAULT_EXPORT_PROFILES]


def _as_event(spec: ExportProfileSpec) -> events.ExportProfile:
    return events.ExportProfile(name=spec.name, format=spec.format, max_side=spec.max_side, quality=spec.quality)


def exported_event(stylized: events.AssetStylized, renditions: list[events.Rendition]) -> events.AssetExported:
    """The exported event, its timeline completed."""
    exported = events.AssetExported(
        asset=stylized.asset, route=stylized.route, model=stylized.model, renditions=renditions
    )
    exported.asset.timeline.exported_at.CopyFrom(events.now_timestamp())
    return exported


def stage_durations(timeline: events.Timeline) -> dict[str, float]:
    """Seconds per stage (tag, route, stylize, export) and in total, for the stages reached."""
    return {stage: ms / 1000 for stage, ms in events.stage_durations_ms(events.timeline_ms(timeline)).items()}


def delivery_id(exported: events.AssetExported) -> str:
    """Stable per asset and render: receivers deduplicate redeliveries on it."""
    kind = "rerender" if exported.route.rerender else "render"
    return f"{exported.asset.asset_id}:{exported.model}:{kind}"
