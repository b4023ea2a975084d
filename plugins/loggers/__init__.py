"""Built-in experiment trackers: TensorBoard and MLflow."""
