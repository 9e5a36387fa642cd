"""Open DMP: Spark jobs for ingest, quality, identity, profiles, segments, lookalike and export."""
