"""Reading stored results: per-run summaries, comparable groups, and statistics against a baseline."""
