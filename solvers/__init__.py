"""The performance lab: instance generators, reference instances and the benchmark harness."""
