"""The ML core: graph building, model, training, scoring, metrics. Free of Dagster."""
