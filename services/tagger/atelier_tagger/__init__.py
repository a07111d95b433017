"""Atelier's tagger: computer-vision tags computed from each original's pixels."""
