"""Analysis downstream of the engine: spreads, curvature at the final points, landscapes between
seeds, paired comparisons, figures.
"""
