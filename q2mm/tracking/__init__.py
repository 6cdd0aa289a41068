"""MLflow tracking of runner jobs: stores, run records, the Hydra multirun callback, plots."""
