"""Lookalike audiences: expand a seed segment to similar people, with measured quality."""
