"""How the operator API's document describes its request bodies.

A body struct made with ``forbid_unknown_fields=True`` refuses a field it does not name (a 422
naming it); Litestar's own struct schemas leave that out, so clients and schemathesis would
take an unknown field for a valid one. This plugin, tried before Litestar's, says so:
``additionalProperties: false``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

# Litestar's own struct schemas, reused: this plugin only adds the one keyword to them.
from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator
    from litestar.openapi.spec import Schema
    from litestar.typing import FieldDefinition


class StrictStructSchemas(StructSchemaPlugin):
    def is_plugin_supported_field(self, field_definition: FieldDefinition) -> bool:
        if not super().is_plugin_supported_field(field_definition):
            return False
        config: msgspec.structs.StructConfig = field_definition.type_.__struct_config__
        return config.forbid_unknown_fields

    def to_openapi_schema(
        self, field_definition: FieldDefinition, schema_creator: SchemaCreator
    ) -> Schema:
        schema = super().to_openapi_schema(field_definition, schema_creator)
        schema.additional_properties = False
        return schema
