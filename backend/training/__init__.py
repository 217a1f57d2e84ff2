"""Training stages (issue 5): one entry module per stage, run by ``backend.training.entry``
in a job directory (see docs/training-contract.md). Heavy libraries are imported inside the
stage functions, so ``registry`` stays light for the UI."""
