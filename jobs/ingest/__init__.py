"""Ingest: raw files in object storage -> bronze -> silver (typed, deduplicated, hashed)."""
