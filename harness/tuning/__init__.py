"""Hyperparameter search: search machinery, flat and nested protocols."""
