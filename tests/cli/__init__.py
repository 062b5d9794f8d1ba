"""Tests of the command line (citeqa.cli)."""
