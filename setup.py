"""Builds the optional C helpers; everything else is in pyproject.toml.

Four small loops in C: the record walk (portmatrix.sources.walk), the decoder's
fast path for common frames (portmatrix.decode.common), the flow table's
group-by (portmatrix.flows.table) and the AWS flow-log text reader
(portmatrix.records.awstext). `optional=True`: without a C compiler the
install still succeeds and their Python/numpy versions are used.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "portmatrix.sources._walk",
            ["src/portmatrix/sources/_walk.c"],
            optional=True,
            extra_compile_args=["-O2"],
        ),
        Extension(
            "portmatrix.decode._common",
            ["src/portmatrix/decode/_common.c"],
            optional=True,
            extra_compile_args=["-O2"],
        ),
        Extension(
            "portmatrix.flows._table",
            ["src/portmatrix/flows/_table.c"],
            optional=True,
            extra_compile_args=["-O2"],
        ),
        Extension(
            "portmatrix.records._awstext",
            ["src/portmatrix/records/_awstext.c"],
            optional=True,
            extra_compile_args=["-O2"],
        ),
    ]
)
