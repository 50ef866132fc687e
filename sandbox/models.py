"""Core sandbox state: API accounting and fault rules.

Both live in the `sandbox` database (see sandbox/router.py) so every process
(web, workers, tests) sees the same counters and rules.
"""

from django.db import models


class Side(models.TextChoices):
    OUTLOOK = "outlook", "Microsoft (identity + Graph)"
    SALESFORCE = "salesforce", "Salesforce"


class ApiCounter(models.Model):
    side = models.CharField(max_length=16, choices=Side.choices)
    family = models.CharField(max_length=64)
    # sha256 prefix of the bearer token, never the token itself; "" when none was sent
    token_fingerprint = models.CharField(max_length=16, blank=True)
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["side", "family", "token_fingerprint"], name="apicounter_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.side}/{self.family}: {self.count}"


class FaultKind(models.TextChoices):
    HTTP_429 = "http_429", "429 Too Many Requests with Retry-After"
    HTTP_500 = "http_500", "500 Internal Server Error"
    HTTP_503 = "http_503", "503 Service Unavailable"
    TIMEOUT = "timeout", "Read timeout before the server acted"
    LOST_RESPONSE = "lost_response", "Write committed, response lost"
    EXPIRED_TOKEN = "expired_token", "Access token rejected as expired (401)"
    REVOKED_REFRESH_TOKEN = "revoked_refresh_token", "Refresh grant refused (invalid_grant)"
    REQUEST_LIMIT_EXCEEDED = "request_limit_exceeded", "Salesforce REQUEST_LIMIT_EXCEEDED"
    GRAPH_410 = "graph_410", "Graph 410 Gone / syncStateNotFound"


class FaultRule(models.Model):
    """Inject a fault into matching requests.

    A rule matches by side, HTTP method (blank = any) and a regular expression
    searched in the path + query. It fires at most `remaining` times (null =
    unlimited), each time with `probability`, drawn from a generator seeded with
    `seed` and the number of matches so far, so runs repeat exactly.
    """

    side = models.CharField(max_length=16, choices=Side.choices)
    method = models.CharField(max_length=10, blank=True)
    path_pattern = models.CharField(max_length=300, default=".*")
    kind = models.CharField(max_length=32, choices=FaultKind.choices)
    remaining = models.PositiveIntegerField(null=True, blank=True)
    probability = models.FloatField(default=1.0)
    seed = models.IntegerField(default=0)
    retry_after = models.PositiveIntegerField(default=2)
    matched = models.PositiveIntegerField(default=0)
    fired = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.kind} on {self.side} {self.method or '*'} {self.path_pattern}"
