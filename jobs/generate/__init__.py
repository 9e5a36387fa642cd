"""Sample-data generator: realistic raw clickstream + CRM files with ground truth beside them."""

from jobs.generate.writer import generate

__all__ = ["generate"]
