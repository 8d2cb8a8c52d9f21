"""Results on disk: the Parquet schema, atomic cell files, claims of cells in flight."""
