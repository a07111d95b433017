"""Atelier's client: submit images over the HTTP API, follow their status, save renditions."""

from atelier_client.client import ApiError, AtelierClient, Submission, image_files

__all__ = ["ApiError", "AtelierClient", "Submission", "image_files"]
