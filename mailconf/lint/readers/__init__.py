"""One pure-Python reader per program: native files in, settings with file:line out. No program is run."""
