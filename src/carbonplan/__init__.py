"""carbonplan: decide where and when deferrable GPU batch jobs run, for less cost and carbon.

Importing the package is cheap on purpose: heavy modules (sqlmodel, numpy, highspy, ray) are
imported by the modules that need them, so the CLI starts fast.
"""

__version__ = "0.1.0"
