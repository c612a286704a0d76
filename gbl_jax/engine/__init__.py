"""The engine: run configuration, training, sweeps over grids x seeds, how runs become compiled
calls, memory checks, results as data.
"""
