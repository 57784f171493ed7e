"""Training engines over the core: losses, optimizers, schedules, penalties, the compiled and
vectorized evaluators, the training loop and the gradient check.
"""
