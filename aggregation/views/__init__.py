"""HTML pages of the aggregation app, one module per area (pools, snapshots, collective rankings)."""
