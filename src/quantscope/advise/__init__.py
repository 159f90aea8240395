"""Advice from measured results: the recommendation (pure logic over summaries)."""
