"""PerceptLab: a workbench for images on the perceptual boundaries of neural classifiers (BAM)."""

__version__ = "0.1.0"

CLASSES = tuple(str(i) for i in range(10))
"""The class names of the MNIST task; class index i is the digit i."""
