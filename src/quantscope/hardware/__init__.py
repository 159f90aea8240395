"""What this machine can do: measured microbenchmarks (bandwidth.py) and, for machines not here,
catalog data and projections. Nothing heavy is imported at package level."""
