"""Profiles: one row per person."""
