"""Events and their encoding: :mod:`.model` (dataclasses) and :mod:`.codec` (Avro)."""
