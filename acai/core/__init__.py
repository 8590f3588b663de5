"""The paper: the run configuration, the networks, the losses and the ACAI model."""
