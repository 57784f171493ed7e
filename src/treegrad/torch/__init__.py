"""PyTorch: the spec as an nn.Module, state dicts back into model files, and training by PyTorch (DDP
under torchrun).
"""
