"""Data formats: the internal dataset and the PLINK, BIMBAM and CFW importers/exporters."""
