"""Validates an OpenAPI document read from stdin with openapi-spec-validator (a third-party
implementation of the OpenAPI 3.0/3.1 schemas). Exit 0 when valid, 1 with the reason if not."""
import json
import sys

from openapi_spec_validator import validate

try:
    validate(json.load(sys.stdin))
except Exception as e:  # the validator raises its own error types; any of them means invalid
    print(f"invalid: {e}", file=sys.stderr)
    sys.exit(1)
print("valid")
