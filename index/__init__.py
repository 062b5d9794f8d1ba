"""citeqa's retrieval core: documents -> chunks -> vectors -> a persisted index, and search over it.

Nothing in this package knows about HTTP; the service and the eval harness both build on it.
"""
