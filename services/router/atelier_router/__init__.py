"""Atelier's style router: brand guidelines and load decide each asset's style and pool."""
