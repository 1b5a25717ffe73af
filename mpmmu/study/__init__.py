"""Reader studies: the study store, designs, analysis of the reads, exports and the teaching quiz."""
