"""Fine-Tuning Lab helpers: one module per concept, imported from the course folder."""
