"""rnngeom: reproduce 'Understanding and controlling the geometry of memory organization in RNNs'.

Every modelling default in this package is a documented *reconstruction* (the paper's full text is not
available); see README.md and config.yaml.
"""

__version__ = "0.1.0"
