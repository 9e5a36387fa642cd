"""Privacy: erasure, PII scanning and retention."""
