"""Running a study: runner, fold trainer, distributed workers."""
