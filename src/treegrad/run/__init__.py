"""A training run and what it leaves: preparing data and model, training, the model file, provenance,
resume, run logs, sweeps.
"""
