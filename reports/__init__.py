"""Report templates and assets, installed as the ``harness_reports`` package."""
