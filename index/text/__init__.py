"""Documents and their text: ids, character spans, the one normalisation, chunks, and the lexical side's words."""
