"""The pipeline's corridor above run, tuning, stats and report: checks before training, multi-dataset runs."""
