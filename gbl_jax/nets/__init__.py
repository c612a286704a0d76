"""Models: the protocol and the flax/equinox/NNX adapters, the built-in mlp and cnn1d, dense
layers, output heads and initializers.
"""
