"""Atelier's exporter: renditions per brand export profile, signed webhooks."""
