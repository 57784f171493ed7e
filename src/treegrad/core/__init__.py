"""The core: the op table, the node classes, iterative graph algorithms and the printers. Imports
nothing of treegrad's but the ground modules.
"""
