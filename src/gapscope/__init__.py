"""gapscope: interactive superconducting tunnelling spectra.

``gapscope.kernels`` holds the numerics (numpy/scipy only);
``gapscope.widgets`` holds the ipywidgets/bqplot panels (needs the ``ui`` extra).
"""

__version__ = "0.1.0"
