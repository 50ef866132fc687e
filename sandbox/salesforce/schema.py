"""The sObjects the sandbox org knows, with the field facts the API enforces.

Lengths and picklists follow the Salesforce Object Reference (see
research/api_fidelity.md §3); every org also carries LinkPoint's custom fields
(the managed package's `LinkPoint_Key__c` external id and two extra e-mails).
"""

from __future__ import annotations

from dataclasses import dataclass, field

KEY_PREFIX = {"Account": "001", "Contact": "003", "Task": "00T", "Event": "00U", "User": "005",
              "Lead": "00Q", "Opportunity": "006", "Case": "500", "EventRelation": "0RE"}
PREFIX_TYPE = {prefix: name for name, prefix in KEY_PREFIX.items()}
LINK_KEY = "LinkPoint_Key__c"


@dataclass(frozen=True)
class Field:
    name: str
    type: str  # id, string, textarea, email, phone, url, picklist, combobox, boolean, int, double, datetime, date, reference
    length: int = 0
    createable: bool = True
    updateable: bool = True
    nillable: bool = True
    required: bool = False  # REQUIRED_FIELD_MISSING on insert when absent/blank
    picklist: tuple[str, ...] = ()
    restricted: bool = False
    default: object = None
    reference_to: tuple[str, ...] = ()
    relationship: str = ""  # e.g. "Account" for AccountId
    external_id: bool = False
    unique: bool = False
    case_sensitive: bool = False
    custom: bool = False
    label: str = ""


def _f(name, type_, length=0, **kw) -> Field:
    return Field(name=name, type=type_, length=length, **kw)


def _ro(name, type_, length=0, **kw) -> Field:
    return Field(name=name, type=type_, length=length, createable=False, updateable=False, **kw)


def _system() -> list[Field]:
    return [
        _ro("Id", "id", 18, nillable=False),
        _ro("IsDeleted", "boolean", nillable=False, default=False),
        _ro("CreatedDate", "datetime", nillable=False),
        _ro("CreatedById", "reference", 18, nillable=False, reference_to=("User",), relationship="CreatedBy"),
        _ro("LastModifiedDate", "datetime", nillable=False),
        _ro("LastModifiedById", "reference", 18, nillable=False, reference_to=("User",), relationship="LastModifiedBy"),
        _ro("SystemModstamp", "datetime", nillable=False),
    ]


def _owner() -> Field:
    return _f("OwnerId", "reference", 18, nillable=False, reference_to=("User",), relationship="Owner")


def _link_key() -> Field:
    return _f(LINK_KEY, "string", 36, external_id=True, unique=True, case_sensitive=True, custom=True,
              label="LinkPoint Key")


def _address(prefix: str) -> list[Field]:
    return [
        _f(f"{prefix}Street", "textarea", 255),
        _f(f"{prefix}City", "string", 40),
        _f(f"{prefix}State", "string", 80),
        _f(f"{prefix}PostalCode", "string", 20),
        _f(f"{prefix}Country", "string", 80),
        _f(f"{prefix}Latitude", "double"),
        _f(f"{prefix}Longitude", "double"),
    ]


TASK_STATUSES = ("Not Started", "In Progress", "Completed", "Waiting on someone else", "Deferred")
CLOSED_STATUSES = ("Completed",)
PRIORITIES = ("High", "Normal", "Low")
SHOW_AS = ("Busy", "OutOfOffice", "Free")

# Polymorphic: Name (Who) is a Contact or a Lead; Related To (What) an Account, Opportunity or Case.
_ACTIVITY_REFS = [
    _f("WhoId", "reference", 18, reference_to=("Contact", "Lead"), relationship="Who"),
    _f("WhatId", "reference", 18, reference_to=("Account", "Opportunity", "Case"), relationship="What"),
]

OBJECTS: dict[str, dict[str, Field]] = {}


def _register(name: str, fields: list[Field]) -> None:
    OBJECTS[name] = {f.name: f for f in _system() + fields}


_register("Account", [
    _f("Name", "string", 255, nillable=False, required=True),
    _f("Type", "picklist", 255, picklist=("Prospect", "Customer - Direct", "Customer - Channel", "Partner", "Other")),
    _f("Industry", "picklist", 255, picklist=("Agriculture", "Banking", "Consulting", "Education", "Energy",
                                              "Finance", "Healthcare", "Manufacturing", "Media", "Retail",
                                              "Technology", "Other")),
    _f("Phone", "phone", 40),
    _f("Website", "url", 255),
    _f("Description", "textarea", 32000),
    *_address("Billing"),
    _owner(),
])

_register("Contact", [
    _f("Salutation", "picklist", 40, picklist=("Mr.", "Ms.", "Mrs.", "Dr.", "Prof.")),
    _f("FirstName", "string", 40),
    _f("LastName", "string", 80, nillable=False, required=True),
    _ro("Name", "string", 121, nillable=False),
    _f("Email", "email", 80),
    _f("Phone", "phone", 40),
    _f("MobilePhone", "phone", 40),
    _f("HomePhone", "phone", 40),
    _f("OtherPhone", "phone", 40),
    _f("Fax", "phone", 40),
    _f("AssistantName", "string", 40),
    _f("AssistantPhone", "phone", 40),
    _f("Title", "string", 128),
    _f("Department", "string", 80),
    _f("Birthdate", "date"),
    _f("LeadSource", "picklist", 255, picklist=("Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other")),
    _f("Description", "textarea", 32000),
    _f("AccountId", "reference", 18, reference_to=("Account",), relationship="Account"),
    *_address("Mailing"),
    *_address("Other"),
    _owner(),
    _link_key(),
    _f("LinkPoint_Email2__c", "email", 80, custom=True, label="Email 2"),
    _f("LinkPoint_Email3__c", "email", 80, custom=True, label="Email 3"),
])

_register("Event", [
    _f("Subject", "combobox", 255, picklist=("Call", "Email", "Meeting", "Send Letter/Quote", "Other")),
    _f("StartDateTime", "datetime"),
    _f("EndDateTime", "datetime"),
    _f("ActivityDateTime", "datetime"),
    _f("ActivityDate", "date"),
    _f("DurationInMinutes", "int"),
    _f("IsAllDayEvent", "boolean", nillable=False, default=False),
    _f("Location", "string", 255),
    _f("Description", "textarea", 32000),
    _f("ShowAs", "picklist", 40, picklist=SHOW_AS, restricted=True, default="Busy"),
    _f("IsPrivate", "boolean", nillable=False, default=False),
    _f("IsReminderSet", "boolean", nillable=False, default=False),
    _f("ReminderDateTime", "datetime"),
    _f("Type", "picklist", 40, picklist=("Call", "Email", "Meeting", "Other")),
    *_ACTIVITY_REFS,
    _owner(),
    _ro("EventSubtype", "picklist", 40, picklist=("Event",), default="Event"),
    _ro("IsChild", "boolean", nillable=False, default=False),
    _ro("IsGroupEvent", "boolean", nillable=False, default=False),
    _ro("GroupEventType", "picklist", 40, picklist=("0", "1", "2", "3"), default="0"),
    _ro("IsArchived", "boolean", nillable=False, default=False),
    _ro("IsRecurrence", "boolean", nillable=False, default=False),
    # Lightning event series (RRULE), creatable from API 52.0; fixed once created.
    Field("IsRecurrence2", "boolean", updateable=False, nillable=False, default=False),
    Field("Recurrence2PatternText", "string", 512, updateable=False),
    _ro("Recurrence2PatternStartDate", "datetime"),
    Field("Recurrence2PatternTimeZone", "string", 40, updateable=False),
    _ro("Recurrence2PatternVersion", "picklist", 40, picklist=("1",)),
    _ro("IsRecurrence2Exclusion", "boolean", nillable=False, default=False),
    _ro("IsRecurrence2Exception", "boolean", nillable=False, default=False),
    _link_key(),
])

_register("Task", [
    _f("Subject", "combobox", 255, picklist=("Call", "Send Letter", "Send Quote", "Other")),
    _f("ActivityDate", "date"),
    _f("Status", "picklist", 40, nillable=False, picklist=TASK_STATUSES, restricted=True, default="Not Started"),
    _f("Priority", "picklist", 40, nillable=False, picklist=PRIORITIES, restricted=True, default="Normal"),
    _f("Description", "textarea", 32000),
    _f("IsReminderSet", "boolean", nillable=False, default=False),
    _f("ReminderDateTime", "datetime"),
    _f("Type", "picklist", 40, picklist=("Call", "Email", "Meeting", "Other")),
    Field("TaskSubtype", "picklist", 40, updateable=False, picklist=("Task", "Email", "List Email", "Call"),
          restricted=True, default="Task"),
    *_ACTIVITY_REFS,
    _owner(),
    _ro("IsClosed", "boolean", nillable=False, default=False),
    _ro("IsHighPriority", "boolean", nillable=False, default=False),
    _ro("CompletedDateTime", "datetime"),
    _ro("IsArchived", "boolean", nillable=False, default=False),
    _ro("IsRecurrence", "boolean", nillable=False, default=False),
    _link_key(),
])

LEAD_STATUSES = ("Open - Not Contacted", "Working - Contacted", "Closed - Converted", "Closed - Not Converted")
OPPORTUNITY_STAGES = ("Prospecting", "Qualification", "Needs Analysis", "Value Proposition", "Id. Decision Makers",
                      "Perception Analysis", "Proposal/Price Quote", "Negotiation/Review", "Closed Won",
                      "Closed Lost")

_register("Lead", [
    _f("Salutation", "picklist", 40, picklist=("Mr.", "Ms.", "Mrs.", "Dr.", "Prof.")),
    _f("FirstName", "string", 40),
    _f("LastName", "string", 80, nillable=False, required=True),
    _ro("Name", "string", 121, nillable=False),
    _f("Company", "string", 255, nillable=False, required=True),
    _f("Title", "string", 128),
    _f("Email", "email", 80),
    _f("Phone", "phone", 40),
    _f("Status", "picklist", 40, nillable=False, picklist=LEAD_STATUSES, restricted=True,
       default="Open - Not Contacted"),
    _f("LeadSource", "picklist", 255, picklist=("Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other")),
    _ro("IsConverted", "boolean", nillable=False, default=False),
    _f("Description", "textarea", 32000),
    _owner(),
])

_register("Opportunity", [
    _f("Name", "string", 120, nillable=False, required=True),
    _f("AccountId", "reference", 18, reference_to=("Account",), relationship="Account"),
    _f("StageName", "picklist", 255, nillable=False, required=True, picklist=OPPORTUNITY_STAGES, restricted=True),
    _f("CloseDate", "date", nillable=False, required=True),
    _f("Amount", "double"),
    _f("Probability", "double"),
    _f("Type", "picklist", 255, picklist=("Existing Customer - Upgrade", "Existing Customer - Replacement",
                                          "New Customer")),
    _f("Description", "textarea", 32000),
    _ro("IsClosed", "boolean", nillable=False, default=False),
    _owner(),
])

_register("Case", [
    # CaseNumber is an auto-number; the sandbox stores it as the record's Name-like label.
    _ro("CaseNumber", "string", 30),
    _f("Subject", "string", 255),
    _f("Status", "picklist", 40, nillable=False, picklist=("New", "Working", "Escalated", "Closed"),
       restricted=True, default="New"),
    _f("Priority", "picklist", 40, picklist=("High", "Medium", "Low"), default="Medium"),
    _f("Origin", "picklist", 40, picklist=("Phone", "Email", "Web")),
    _f("ContactId", "reference", 18, reference_to=("Contact",), relationship="Contact"),
    _f("AccountId", "reference", 18, reference_to=("Account",), relationship="Account"),
    _f("Description", "textarea", 32000),
    _owner(),
])

# Attendees of an Event, and with Shared Activities on also its extra Contacts/Leads (IsParent).
# IsParent and IsWhat exist only in orgs with Shared Activities (schema_for drops them otherwise).
_register("EventRelation", [
    Field("EventId", "reference", 18, updateable=False, nillable=False, required=True,
          reference_to=("Event",), relationship="Event"),
    Field("RelationId", "reference", 18, updateable=False, nillable=False, required=True,
          reference_to=("Contact", "Lead", "User"), relationship="Relation"),
    _f("IsInvitee", "boolean", nillable=False, default=False),
    _f("IsParent", "boolean", nillable=False, default=False),
    _f("IsWhat", "boolean", nillable=False, default=False),
    _f("Status", "picklist", 40, picklist=("New", "Declined", "Accepted"), default="New"),
    _f("Response", "string", 255),
])
SHARED_ACTIVITIES_ONLY = {"EventRelation": ("IsParent", "IsWhat")}

# Users are provisioned by the sandbox (sf_user_ensure), never through the API.
_register("User", [
    _ro("Username", "string", 80, nillable=False),
    _ro("Email", "email", 128, nillable=False),
    _ro("FirstName", "string", 40),
    _ro("LastName", "string", 80, nillable=False),
    _ro("Name", "string", 121, nillable=False),
    _ro("Alias", "string", 8),
    _ro("IsActive", "boolean", nillable=False, default=True),
    _ro("TimeZoneSidKey", "picklist", 40),
    _ro("CompanyName", "string", 80),
])

# Objects the API may write.
WRITABLE = ("Account", "Contact", "Event", "Task", "Lead", "Opportunity", "Case", "EventRelation")
# Objects SOSL searches, and the fields its NAME FIELDS scope reads.
SEARCH_NAME_FIELDS = {
    "Contact": ("Name", "FirstName", "LastName"), "Lead": ("Name", "FirstName", "LastName", "Company"),
    "Account": ("Name",), "Opportunity": ("Name",), "Case": ("CaseNumber", "Subject"),
}
SEARCH_EMAIL_FIELDS = {"Contact": ("Email",), "Lead": ("Email",)}


def canonical_object(name: str) -> str | None:
    for known in OBJECTS:
        if known.lower() == (name or "").lower():
            return known
    return None


def field_lookup(sobject: str) -> dict[str, Field]:
    """Case-insensitive field lookup: lower-cased name → Field."""
    return _LOOKUP[sobject]


_LOOKUP = {name: {f.lower(): fdef for f, fdef in fields.items()} for name, fields in OBJECTS.items()}


def relationships(sobject: str) -> dict[str, Field]:
    """Lower-cased relationship name → its reference field."""
    return {f.relationship.lower(): f for f in OBJECTS[sobject].values() if f.relationship}


def custom_field(row) -> Field:
    """A per-org custom field (sandbox SfCustomField) as a schema Field; retired values drop out."""
    values = tuple(v["value"] for v in row.picklist or () if v.get("active", True))
    kind = {"checkbox": "boolean"}.get(row.type, row.type)
    length = {"string": row.length or 255, "textarea": row.length or 32000, "picklist": 255}.get(kind, 0)
    return Field(name=row.name, type=kind, length=length, nillable=kind != "boolean" and not row.required,
                 required=row.required, picklist=values, restricted=kind == "picklist", custom=True,
                 label=row.label, default=(False if kind == "boolean" else row.default or None))


def schema_for(org, sobject: str) -> dict[str, Field]:
    """The object's fields as this org has them: its custom fields added, unlicensed features removed."""
    fields = dict(OBJECTS[sobject])
    if org is None:
        return fields
    if not org.shared_activities:
        for name in SHARED_ACTIVITIES_ONLY.get(sobject, ()):
            fields.pop(name, None)
    for row in org.custom_fields.filter(sobject=sobject, deleted=False).order_by("pk"):
        fields[row.name] = custom_field(row)
    return fields


@dataclass
class Describe:
    name: str
    fields: list[dict] = field(default_factory=list)


def describe_field(f: Field) -> dict:
    soap_type = {
        "id": "tns:ID", "reference": "tns:ID", "boolean": "xsd:boolean", "int": "xsd:int", "double": "xsd:double",
        "datetime": "xsd:dateTime", "date": "xsd:date",
    }.get(f.type, "xsd:string")
    return {
        "name": f.name,
        "label": f.label or f.name,
        "type": f.type,
        "soapType": soap_type,
        "length": f.length if f.type not in ("boolean", "int", "double", "datetime", "date") else 0,
        "createable": f.createable,
        "updateable": f.updateable,
        "nillable": f.nillable,
        "defaultedOnCreate": f.default is not None and f.type != "boolean" or f.name in ("OwnerId",),
        "custom": f.custom,
        "externalId": f.external_id,
        "unique": f.unique,
        "caseSensitive": f.case_sensitive,
        "idLookup": f.name == "Id" or f.external_id or f.type == "email" and f.name == "Email",
        "filterable": f.type != "textarea" or f.length <= 255,
        "sortable": f.type != "textarea" or f.length <= 255,
        "restrictedPicklist": f.restricted,
        "picklistValues": [
            {"active": True, "defaultValue": v == f.default, "label": v, "validFor": None, "value": v}
            for v in f.picklist
        ],
        "referenceTo": list(f.reference_to),
        "relationshipName": f.relationship or None,
    }
