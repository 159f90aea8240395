"""llama.cpp through llama-cpp-python: backend.py runs GGUF files, convert.py writes them (cached)."""
