"""Development tools: benchmarks and experiments that are not part of the product."""
