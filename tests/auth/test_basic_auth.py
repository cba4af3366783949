"""basic-auth (RFC 7617) through the auth plugin, over real sockets."""

from __future__ import annotations

import base64
import subprocess
import sys
from typing import Any

import aiohttp
import pytest
import yaml

from auth.basic_auth import hash_password
from proxy.config import ConfigError, parse_config
from tests.auth.conftest import AuthGateway, auth_config

# Hashing is slow by design: make each hash once per test session.
CAROL_PASSWORD = "correct horse: battery staple"
CAROL_HASH = hash_password(CAROL_PASSWORD)
DAVE_PASSWORD = "pässwörd-ünicode"
DAVE_HASH = hash_password(DAVE_PASSWORD)

CONSUMERS: list[dict[str, Any]] = [
    {"name": "carol", "credentials": [
        {"id": "carol-basic", "type": "basic-auth", "username": "carol",
         "password_hash": CAROL_HASH}]},
    {"name": "dave", "credentials": [
        {"id": "dave-basic", "type": "basic-auth", "username": "dävé",
         "password_hash": DAVE_HASH}]},
]


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def get(http: aiohttp.ClientSession, url: str, **kwargs: Any
              ) -> tuple[int, dict[str, Any], aiohttp.ClientResponse]:
    async with http.get(url, **kwargs) as resp:
        return resp.status, await resp.json(), resp


async def test_right_password_passes(auth_gateway: AuthGateway,
                                     http: aiohttp.ClientSession) -> None:
    gw = await auth_gateway(CONSUMERS, {"any_of": ["basic-auth"]})
    for _ in range(2):  # the second is answered from the verified cache
        status, body, _ = await get(http, gw.url + "/",
                                    headers={"Authorization": basic("carol", CAROL_PASSWORD)})
        assert status == 200
        assert body["headers"]["X-Consumer-Username"] == "carol"
        assert body["headers"]["X-Credential-Identifier"] == "carol-basic"
    # UTF-8 user names and passwords (RFC 7617 charset="UTF-8").
    status, body, _ = await get(http, gw.url + "/",
                                headers={"Authorization": basic("dävé", DAVE_PASSWORD)})
    assert status == 200 and body["headers"]["X-Consumer-Username"] == "dave"


@pytest.mark.parametrize("authorization", [
    basic("carol", "wrong"),
    basic("carol", CAROL_PASSWORD[:-1]),
    basic("nobody", CAROL_PASSWORD),
    basic("carol", CAROL_PASSWORD + "x"),
    "Basic !!!not-base64!!!",
    "Basic " + base64.b64encode(b"no-colon-here").decode(),
    "Basic " + base64.b64encode(b"\xff\xfe:pw").decode(),
    "Basic ",
])
async def test_wrong_or_malformed_credentials_get_401(auth_gateway: AuthGateway,
                                                      http: aiohttp.ClientSession,
                                                      authorization: str) -> None:
    gw = await auth_gateway(CONSUMERS, {"any_of": ["basic-auth"],
                                        "basic-auth": {"realm": "staff"}})
    status, body, resp = await get(http, gw.url + "/", headers={"Authorization": authorization})
    assert status == 401
    assert body["error"] == "invalid credentials"
    assert resp.headers["WWW-Authenticate"] == 'Basic realm="staff", charset="UTF-8"'


async def test_no_credentials_get_the_challenge(auth_gateway: AuthGateway,
                                                http: aiohttp.ClientSession) -> None:
    gw = await auth_gateway(CONSUMERS, {"any_of": ["basic-auth"]})
    status, body, resp = await get(http, gw.url + "/")
    assert (status, body["error"]) == (401, "authentication required")
    assert resp.headers["WWW-Authenticate"] == 'Basic realm="bastion", charset="UTF-8"'
    # Another scheme in Authorization is not a Basic credential.
    status, body, _ = await get(http, gw.url + "/", headers={"Authorization": "Bearer abc"})
    assert (status, body["error"]) == (401, "authentication required")


async def test_hide_credentials_removes_authorization(auth_gateway: AuthGateway,
                                                      http: aiohttp.ClientSession) -> None:
    gw = await auth_gateway(CONSUMERS, {"any_of": ["basic-auth"], "hide_credentials": True})
    status, body, _ = await get(http, gw.url + "/",
                                headers={"Authorization": basic("carol", CAROL_PASSWORD)})
    assert status == 200 and "Authorization" not in body["headers"]


def test_plain_passwords_are_rejected_in_config() -> None:
    consumers = [{"name": "x", "credentials": [
        {"id": "x1", "type": "basic-auth", "username": "x", "password_hash": "hunter2"}]}]
    with pytest.raises(ConfigError) as info:
        parse_config(yaml.safe_dump(auth_config("http://127.0.0.1:9", consumers,
                                                {"any_of": ["basic-auth"]})))
    assert "consumers[0].credentials[0].password_hash: an Argon2 hash is expected" in str(
        info.value)
    consumers[0]["credentials"][0]["password_hash"] = "$argon2id$garbage"
    with pytest.raises(ConfigError, match="not a valid Argon2 hash"):
        parse_config(yaml.safe_dump(auth_config("http://127.0.0.1:9", consumers,
                                                {"any_of": ["basic-auth"]})))


def test_hash_password_command_makes_a_hash_that_verifies() -> None:
    from argon2 import PasswordHasher

    out = subprocess.run([sys.executable, "-m", "proxy.cli", "hash-password"],
                         input="s3cret pass\n", capture_output=True, text=True, check=True)
    digest = out.stdout.strip()
    assert digest.startswith("$argon2id$")
    assert "s3cret" not in digest
    assert PasswordHasher().verify(digest, "s3cret pass")
