"""Tests of citeqa.index."""
