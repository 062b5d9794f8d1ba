"""citeqa's faces: the FastAPI service and the command line. Thin: validate, call index/, shape the reply."""
