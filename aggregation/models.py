"""Models of the aggregation app."""
from __future__ import annotations
