"""The shared engine: streams, book, features, strategies, risk, positions, fills, config."""
