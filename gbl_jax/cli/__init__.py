"""The command line (gbl-jax) and what only it uses: parsing, building a run from a config, the run
folder, the runner, multi-process launch, reports.
"""
