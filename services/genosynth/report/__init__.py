"""The run report: one static HTML page with the plots and tables of the comparison."""
