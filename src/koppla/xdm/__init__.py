"""XDM: Koppla's schema definitions, the schema registry and validation with issue paths.

The Arrow layout lives in `koppla.xdm.arrow` (imported on demand: it needs pyarrow).
"""

from koppla.xdm.experience_event import commerce_experience_event
from koppla.xdm.registry import SchemaRegistry, builtin_registry
from koppla.xdm.types import Array, Map, Object, Scalar, Schema, Type
from koppla.xdm.validation import Issue, Validated, Validator, compile_validator, validate

__all__ = [
    "Array",
    "Issue",
    "Map",
    "Object",
    "Scalar",
    "Schema",
    "SchemaRegistry",
    "Type",
    "Validated",
    "Validator",
    "builtin_registry",
    "commerce_experience_event",
    "compile_validator",
    "validate",
]
