"""Run reports: one self-contained HTML page (plus JSON) per pipeline run."""
