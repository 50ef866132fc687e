from django.apps import AppConfig


class SandboxMicrosoftConfig(AppConfig):
    name = "sandbox.microsoft"
    label = "sandbox_microsoft"
    verbose_name = "Sandbox: Microsoft identity and Graph"
