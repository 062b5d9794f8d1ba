"""Tests of citeqa.eval."""
