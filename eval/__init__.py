"""Retrieval evaluation: the gold question set for seeds/, metrics, and a runner for BEIR datasets."""
