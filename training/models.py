"""Models of the training app."""
from __future__ import annotations
