"""Plate OCR: network, data, synthetic shard generator, training and ONNX export (training needs torch)."""
