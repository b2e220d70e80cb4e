"""Checks on rendered pages shared by the page tests."""
from __future__ import annotations

import re

# A script or stylesheet from another host (a CDN): the pages must work offline. (A bare "cdn" check
# failed on a random token that happened to contain the letters.)
EXTERNAL_ASSET = re.compile(r'<(?:script|link)\b[^>]*\b(?:src|href)="(?:https?:)?//', re.IGNORECASE)
