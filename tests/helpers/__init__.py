"""Shared test fakes: hand-built results and envs, fake models, store child-process bodies."""
