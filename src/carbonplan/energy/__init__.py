"""Energy and emissions: the power model, PUE, embodied amortization and the NVML meter."""
