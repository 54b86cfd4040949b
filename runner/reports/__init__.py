"""Reports: each takes the results model and writes to a stream or a file, nothing else."""
