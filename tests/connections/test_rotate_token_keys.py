from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command

from connections.crypto import TokenDecryptError
from connections.models import Connection

pytestmark = pytest.mark.django_db


@pytest.fixture
def conn(carol):
    from orgs.models import Membership

    c = Connection(membership=Membership.objects.get(user=carol), provider="salesforce", account_name="carol")
    return c


def test_rotation_leaves_only_the_new_key_needed(settings, conn):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.TOKEN_ENCRYPTION_KEYS = [old]
    conn.write_tokens({"access_token": "AT-secret", "refresh_token": "RT-secret"})
    conn.save()

    settings.TOKEN_ENCRYPTION_KEYS = [new, old]  # new key first: encrypts; old still decrypts
    call_command("rotate_token_keys")

    settings.TOKEN_ENCRYPTION_KEYS = [new]  # the old key is gone
    conn.refresh_from_db()
    assert conn.read_tokens() == {"access_token": "AT-secret", "refresh_token": "RT-secret"}


def test_without_rotation_removing_the_old_key_locks_the_tokens(settings, conn):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.TOKEN_ENCRYPTION_KEYS = [old]
    conn.write_tokens({"access_token": "AT"})
    conn.save()
    settings.TOKEN_ENCRYPTION_KEYS = [new]
    conn.refresh_from_db()
    with pytest.raises(TokenDecryptError):
        conn.read_tokens()
    with pytest.raises(CommandError, match="could not be decrypted"):
        call_command("rotate_token_keys")


def test_empty_setting_uses_a_key_derived_from_secret_key(settings, conn):
    settings.TOKEN_ENCRYPTION_KEYS = []
    conn.write_tokens({"access_token": "AT"})
    assert conn.read_tokens() == {"access_token": "AT"}
    settings.SECRET_KEY = "another-secret-key-for-this-test-only-0123456789"
    with pytest.raises(TokenDecryptError):
        conn.read_tokens()
