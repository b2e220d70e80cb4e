"""Admin of the evaluation app."""
from __future__ import annotations
