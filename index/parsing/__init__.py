"""Files in: which format a file is, and each format's parser, to normalised text with page and section tables."""
