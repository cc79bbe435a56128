"""Pure Python: time series, deltas, trend fits, decoded allocator views. Never imports Textual."""
