"""Builds the optional C helpers; everything else is in pyproject.toml.

Four small loops in C: the record walk (portmatrix.sources.walk), the decoder's
fast path for common frames (portmatrix.decode.common), the flow table's
group-by (portmatrix.flows.table) and the AWS flow-log text reader
(portmatrix.records.awstext). `optional=True`: without a C compiler the
install still succeeds and their Python/numpy versions are used.
"""

from setuptools import Extension, setup

HELPERS = ("sources._walk", "decode._common", "flows._table", "records._awstext")

setup(
    ext_modules=[
        Extension(
            f"portmatrix.{name}",
            [f"src/portmatrix/{name.replace('.', '/')}.c"],
            optional=True,
            extra_compile_args=["-O2"],
        )
        for name in HELPERS
    ]
)
