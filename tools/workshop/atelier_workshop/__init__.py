"""Atelier's model workshop: training, evaluation, INT8 quantisation, the shipped default models and
the `atelier train` and `atelier models` commands. The serving stylizer carries none of it."""
