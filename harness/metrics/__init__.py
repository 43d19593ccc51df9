"""Shared scorers. Each returns plain Python numbers (never numpy scalars: the submission
checker's regexes do not match ``np.float64(...)``)."""
