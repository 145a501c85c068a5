"""The prep step: quality control (:mod:`genosynth.prep.qc`), the train/holdout split and SNP batches."""
