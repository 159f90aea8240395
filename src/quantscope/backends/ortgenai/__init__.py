"""onnxruntime-genai: the model builder's graphs run by its Generator."""
