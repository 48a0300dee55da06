"""The end-of-day run: set-based steps over account partitions, restartable and idempotent."""
