"""Talks to the OS and tools; returns frozen dataclasses. Never imports Textual."""
