"""Is a force field any good beyond its fit? Scoring without fitting, held-out structures,
cross-validation folds and selectivity (QM vs MM3* energy differences of TS groups)."""
