"""Plate detector: network, training data, training loop, ONNX export and evaluation."""
