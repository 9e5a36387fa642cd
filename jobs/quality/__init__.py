"""Data quality: Great Expectations checkpoints that gate the silver layer."""
