"""Tests of citeqa.service."""
