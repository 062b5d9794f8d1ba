"""Ingestion on a Ray cluster (the optional extra `citeqa[ray]`): workers parse, split, embed and write segments;
this process stays the one committer. Nothing outside this room imports ray, and this room imports it only when
a cluster ingestion runs."""
