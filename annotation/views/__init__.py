"""HTML views of the annotation app, one module per area (annotate, projects, profile, imports)."""
