"""Data: the built-in problems, real data sets (MNIST-1D, digits, files), the data record, closed-
form population losses.
"""
