"""HAQ-style hardware-aware mixed precision (Wang et al., CVPR 2019): a format per Linear under a budget.

  space.py    the formats a runtime executes per layer; HAQ's action -> format mapping
  cost.py     cost tables per (tensor shape, format): measured here (measure.py) or projected
  proxy.py    the quality signal: KLD vs the reference on calibration text, per layer and per policy
  ddpg.py     HAQ's DDPG agent;  adjust.py  its budget adjustment and the ILP baseline
  export.py   a policy as a per-tensor GGUF or a `run --policy` TOML;  search.py  the whole search
"""
