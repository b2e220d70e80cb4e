"""Reading and validating item imports (pure: no database access). Public API in `annotation.importers`."""
