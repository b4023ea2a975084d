"""Statistics valid for cross-validation (see issue: statistics)."""
