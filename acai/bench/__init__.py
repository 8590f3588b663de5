"""`acai bench`: how fast the training step runs, beside a plain Keras step and the machine's
peak."""
