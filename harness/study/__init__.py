"""The study file: schema, loading with line numbers, validation without training."""
