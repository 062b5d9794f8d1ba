"""Answers: an extractive answer composed from quotes, and each claim of an answer checked against its citations."""
