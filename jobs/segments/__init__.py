"""Behavioural segments: YAML rules compiled to Spark expressions, membership with history."""
