"""The example studies, shipped with the package as ``harness_studies`` (``harness studies`` lists them)."""
