"""The probabilistic core (section 6.2): closed-form log densities, the output distributions, the
costs built from them, saturation diagnostics.
"""
