"""Sources and model over time: the live sampler, the snapshot, the recording format and replay feed."""
