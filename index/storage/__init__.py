"""A collection on disk: the catalog, immutable segments, snapshots that searches read, and original files."""
