"""What a measurement is and what is derived from it: intervals over processes, blocks and
iterations (``nested``), and a cell's figures read through them (``estimate``)."""
