"""Builds the optional C record walker; everything else is in pyproject.toml.

`optional=True`: without a C compiler the install still succeeds and the
pure-Python walk in portmatrix.sources.walk is used instead.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "portmatrix.sources._walk",
            ["src/portmatrix/sources/_walk.c"],
            optional=True,
            extra_compile_args=["-O2"],
        )
    ]
)
