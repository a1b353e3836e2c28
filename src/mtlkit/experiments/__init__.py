"""Comparisons: the grid's settings (:mod:`.config`), its cells and their files
(:mod:`.cells`), one run (:mod:`.run`), running the grid (:mod:`.grid`) and the statistics
over seeds (:mod:`.stats`)."""
