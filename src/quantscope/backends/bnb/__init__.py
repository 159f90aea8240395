"""bitsandbytes runtime: LLM.int8 and NF4/FP4 quantization at load time (backend.py)."""
