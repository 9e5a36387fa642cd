"""Identity resolution: identifier graph -> connected components -> person ids."""

from jobs.identity.components import connected_components

__all__ = ["connected_components"]
