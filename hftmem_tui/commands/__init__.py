"""One module per CLI command; cli.py parses the arguments and dispatches here."""
