"""The simulator's gateway rules, spoken to with raw HTTP (what the real KIS would answer)."""

from __future__ import annotations

import aiohttp

from brokers.kis import wire
from brokers.kis.simulator import SimSettings
from tests.brokers.kis.conftest import APP_KEY, APP_SECRET, Env, make_env


async def post(env: Env, path: str, body: dict[str, str],
               headers: dict[str, str] | None = None) -> tuple[int, dict[str, object]]:
    async with aiohttp.ClientSession() as s, s.post(env.cfg.rest_base + path, json=body,
                                                    headers=headers or {}) as r:
        return r.status, await r.json()


async def get_price(env: Env, token: str, tr: str = wire.TR_PRICE) -> tuple[int, dict[str, str]]:
    headers = {"authorization": f"Bearer {token}", "appkey": APP_KEY, "appsecret": APP_SECRET,
               "tr_id": tr}
    async with aiohttp.ClientSession() as s, s.get(
            env.cfg.rest_base + wire.PRICE, headers=headers,
            params={"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": "005930"}) as r:
        return r.status, await r.json()


TOKEN_BODY = {"grant_type": "client_credentials", "appkey": APP_KEY, "appsecret": APP_SECRET}


async def test_token_throttle_reuse_and_expiry(env: Env) -> None:
    status, first = await post(env, wire.TOKEN, TOKEN_BODY)
    assert status == 200 and first["token_type"] == "Bearer" and first["expires_in"] == 86400
    status, again = await post(env, wire.TOKEN, TOKEN_BODY)
    assert status == 403 and again["error_code"] == wire.TOKEN_THROTTLED
    env.clock.advance(61)
    status, same = await post(env, wire.TOKEN, TOKEN_BODY)
    assert status == 200 and same["access_token"] == first["access_token"]   # within 6 h
    token = str(first["access_token"])
    assert (await get_price(env, token))[0] == 200
    env.clock.advance(86_400)
    status, body = await get_price(env, token)
    assert status == 500 and body["msg_cd"] == wire.TOKEN_EXPIRED
    status, body = await get_price(env, "forged")
    assert status == 500 and body["msg_cd"] == wire.TOKEN_INVALID


async def test_rate_window_answers_egw00201() -> None:
    env = await make_env(SimSettings(domain="virtual", auto_step=False, ping_interval=0))
    try:
        _, tok = await post(env, wire.TOKEN, TOKEN_BODY)
        codes = [(await get_price(env, str(tok["access_token"])))[1]["msg_cd"]
                 for _ in range(3)]
        assert codes[:2] == ["MCA00000", "MCA00000"] and codes[2] == wire.RATE_EXCEEDED
        env.clock.advance(1.0)
        assert (await get_price(env, str(tok["access_token"])))[0] == 200
        assert env.sim.venue.stats.rate_rejected == 1
    finally:
        await env.server.close()


async def test_domain_and_tr_mixups() -> None:
    env = await make_env(SimSettings(domain="real", auto_step=False, ping_interval=0),
                         app_domain="virtual")
    try:
        status, body = await post(env, wire.TOKEN, TOKEN_BODY)
        assert status == 500 and body["msg_cd"] == wire.DOMAIN_MISMATCH
    finally:
        await env.server.close()


async def test_approval_uses_secretkey(env: Env) -> None:
    status, body = await post(env, wire.APPROVAL, {"grant_type": "client_credentials",
                                                   "appkey": APP_KEY, "appsecret": APP_SECRET})
    assert status == 403                                  # the field is `secretkey`
    status, body = await post(env, wire.APPROVAL, {"grant_type": "client_credentials",
                                                   "appkey": APP_KEY, "secretkey": APP_SECRET})
    assert status == 200 and str(body["approval_key"]).startswith("simws-")
