"""The planner: instance building, column generation, MIP backends, baselines, explanations.

Only `instance.py` reads domain objects, the store and signals; everything else sees arrays.
"""
