"""Field mapping between Outlook (Graph) payloads, canonical records and
Salesforce sObjects. One module per kind (``contacts``, ``tasks``, ``events``),
each with ``from_graph``, ``to_graph``, ``from_salesforce``, ``to_salesforce``;
the shared ``canonical_hash``, ``diff_fields`` and ``merge3`` work on any kind.
"""

from .common import (
    Canonical,
    FieldConflict,
    MappingError,
    canonical_hash,
    diff_fields,
    html_to_text,
    merge3,
    text_to_html,
)

__all__ = [
    "Canonical",
    "FieldConflict",
    "MappingError",
    "canonical_hash",
    "diff_fields",
    "html_to_text",
    "merge3",
    "text_to_html",
]
