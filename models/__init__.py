"""Training, export and the shipped model (installed as the package `indexer.bundled_models`)."""
