"""Development-only values that let a fresh clone run with no configuration.

The settings fall back to them; `manage.py check --deploy` refuses each one
(linkpoint/checks.py), so a production deployment cannot start on them by accident.
"""

DEV_SECRET_KEY_PREFIX = "dev-only-insecure-key"

# The OAuth client the sandbox emulators accept; real Microsoft/Salesforce apps have their own.
DEV_OAUTH_CLIENT = {
    "MICROSOFT_CLIENT_ID": "linkpoint-dev-client",
    "MICROSOFT_CLIENT_SECRET": "linkpoint-dev-secret",
    "SALESFORCE_CLIENT_ID": "linkpoint-dev-consumer",
    "SALESFORCE_CLIENT_SECRET": "linkpoint-dev-consumer-secret",
}
