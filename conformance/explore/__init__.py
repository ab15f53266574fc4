"""Model-based exploration: generated operation sequences checked against a reference model, failures as YAML cases."""
