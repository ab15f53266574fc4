"""The GSP specs, as data: one YAML file per spec, JSON Schemas in schema/."""
