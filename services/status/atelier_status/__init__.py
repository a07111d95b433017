"""Atelier's status service: the asset status view (a faust table over every topic) and its read API."""
