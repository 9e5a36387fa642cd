"""Activation: audience files per ad platform, full and add/remove, consent-safe."""
