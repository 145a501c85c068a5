"""Runners of the pipeline DAG: one step (``step``), the whole DAG locally (``local``), Argo (``argo``)."""
