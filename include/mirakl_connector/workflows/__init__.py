"""One module per workflow: pure decisions, and the job that extracts, decides, acts, records."""
