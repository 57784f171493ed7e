"""The speed benchmark (`treegrad bench`): workloads, peers and measurements. Nothing in treegrad
imports it but the command.
"""
