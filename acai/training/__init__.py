"""Training: data sources and their pipeline, the loop, `train(config, workdir)`, the run
folder, the feature loss's network and the classifiers."""
