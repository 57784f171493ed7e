"""Spec files: reading with positions, the pydantic models, semantic analysis, building the graph,
--set, and `init`'s scaffold.
"""
