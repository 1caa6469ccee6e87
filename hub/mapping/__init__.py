"""Declarative mappings: ``mappings/*.yaml`` compiled once into a fast callable per stream.

The user reference is ``docs/mappings.md``. ``load_mapping`` reads and compiles a file; the result maps raw
records into :class:`hub.records.Mapped` rows and turns bad records into :class:`hub.records.RejectedRecord`.
"""

from hub.mapping.compile import CompiledMapping, compile_mapping, load_mapping
from hub.mapping.fields import TransformFactory
from hub.mapping.spec import EntitySpec, FieldSpec, MappingSpec

__all__ = [
    "CompiledMapping",
    "EntitySpec",
    "FieldSpec",
    "MappingSpec",
    "TransformFactory",
    "compile_mapping",
    "load_mapping",
]
