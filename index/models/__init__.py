"""The models: the sentence encoder (torch or ONNX Runtime) and the learned models shipped here as JSON."""
