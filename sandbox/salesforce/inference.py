"""Field definitions inferred from generated values, for fields the standard registry lacks.

The org generator may emit fields the sandbox has no definition for (an extra standard
field, or a custom ``__c`` field); registering them from their Python type keeps describe,
SOQL and writes consistent instead of dropping data.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sandbox.salesforce.schema import SfField

_ID_RE = re.compile(r"^[a-zA-Z0-9]{15}([a-zA-Z0-9]{3})?$")


def infer_field(name: str, value: Any) -> SfField:
    custom = name.endswith("__c")
    if isinstance(value, bool):
        type_ = "boolean"
    elif isinstance(value, int):
        type_ = "int"
    elif isinstance(value, float | Decimal):
        type_ = "double"
    elif isinstance(value, datetime):
        type_ = "datetime"
    elif isinstance(value, date):
        type_ = "date"
    elif name.endswith("Id") and isinstance(value, str) and _ID_RE.match(value):
        type_ = "reference"
    else:
        type_ = "string"
    length = {"string": 255, "reference": 18}.get(type_, 0)
    precision = 18 if type_ in ("double", "int") else 0
    return SfField(name=name, type=type_, label=name.removesuffix("__c").replace("_", " "), length=length,
                   custom=custom, precision=precision)
