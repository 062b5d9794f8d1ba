"""The write path: documents prepared into segment rows, committed to a collection; folders and files in."""
