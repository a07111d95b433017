"""Atelier's stylizer: micro-batched feed-forward style transfer on GPU or CPU."""
