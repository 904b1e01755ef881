"""Calibration of a cascade's named threshold on labeled data, the library behind ``lmlang calibrate``
(:mod:`lmlang.multimodel.calibrate`, the command).

``data`` reads the labeled inputs and finds in the query what to calibrate (:class:`Plan`); ``runs`` runs each
model of the cascade once on each input (cached on disk); ``metrics`` scores a cascade, a model alone, random
mixing and the oracle on observed runs; ``fitting`` splits the data and fits the thresholds; ``tables`` writes
the report's tables.
"""
