"""Atelier's uploader: HTTP API, bucket-drop trigger and intake events in; validated uploads out."""
