"""Ranking: dense and lexical candidates fused, each hit's quote chosen, and the head put in learned order."""
