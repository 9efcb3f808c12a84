"""Carbon-intensity providers, one module each; `signals.registry.PROVIDERS` names them."""
