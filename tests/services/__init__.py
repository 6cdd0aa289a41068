"""Real services some tests need (a single-node SLURM cluster, PostgreSQL, an MLflow server),
started from installed Debian packages and stopped by their PID files."""
