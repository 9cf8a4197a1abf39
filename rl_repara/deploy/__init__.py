"""Loading a trained policy and exporting it (ONNX, torch.export)."""
