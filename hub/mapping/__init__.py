"""Declarative mappings: ``mappings/*.yaml`` compiled once into a fast callable per stream.

The user reference is ``docs/mappings.md``. ``load_mapping`` reads and compiles a file; the result maps raw
records into :class:`hub.records.Mapped` rows (a :class:`ReplacingMapped`, with the scopes its ``replace: true``
blocks read, for a mapping that has some) and turns bad records into :class:`hub.records.RejectedRecord`.
"""

from hub.mapping.compile import CompiledMapping, ReplacingMapped, compile_mapping, load_mapping
from hub.mapping.fields import TransformFactory
from hub.mapping.spec import EntitySpec, FieldSpec, MappingSpec

__all__ = [
    "CompiledMapping",
    "EntitySpec",
    "FieldSpec",
    "MappingSpec",
    "ReplacingMapped",
    "TransformFactory",
    "compile_mapping",
    "load_mapping",
]
