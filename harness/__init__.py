"""A reproducible MLPerf Inference harness driven by the real LoadGen."""

__version__ = "0.1.0"
