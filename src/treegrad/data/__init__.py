"""Tables of data: reading and writing CSV, built-in generated sets, columns to inputs, weights, and a
process's part of the rows.
"""
