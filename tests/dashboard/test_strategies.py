"""Strategy editing: live validation with line/column, parameter edits, versions and diffs,
and the backtest button's answer."""

from __future__ import annotations

import pytest

from jts.dashboard.strategies import BadRequest, StrategyService, set_params
from tests.dashboard.conftest import REPO, Env

GOOD = (REPO / "strategies" / "paper_momentum.toml").read_text(encoding="utf-8")


def test_set_params_rewrites_plain_and_range_values_keeping_comments() -> None:
    text = '[strategy]\nname = "x"\n[params]\nfast = 3   # quick\nslow = { default = 8, min = 5 }\n'
    out = set_params(text, {"fast": 4, "slow": 12.5})
    assert "fast = 4   # quick\n" in out and "slow = { default = 12.5, min = 5 }" in out
    with pytest.raises(BadRequest, match="unknown parameter"):
        set_params(text, {"nope": 1})
    with pytest.raises(BadRequest, match="number"):
        set_params(text, {"fast": "3"})


async def test_validate_reports_line_and_column(env: Env) -> None:
    csrf = await env.login()
    h = {"X-CSRF-Token": csrf}
    ok = await (await env.client.post("/api/strategies/paper_momentum/validate",
                                      json={"text": GOOD}, headers=h)).json()
    assert ok["ok"] and ok["summary"]["params"] == {"fast": 3.0, "slow": 8.0}
    bad_text = GOOD.replace('entry = "crossover(fast_ma, slow_ma)"',
                            'entry = "crossover(fast_ma, slow_mx)"')
    bad = await (await env.client.post("/api/strategies/paper_momentum/validate",
                                       json={"text": bad_text}, headers=h)).json()
    assert not bad["ok"]
    (err,) = bad["errors"]
    line = bad_text.splitlines().index('entry = "crossover(fast_ma, slow_mx)"') + 1
    assert err["line"] == line and err["col"] == len('entry = "crossover(fast_ma, ') + 1
    assert "slow_mx" in err["message"] and err["kind"] == "name"
    syntax = await (await env.client.post("/api/strategies/x/validate", json={
        "text": "[strategy\nname = 1"}, headers=h)).json()
    assert not syntax["ok"] and syntax["errors"][0]["line"] == 1
    r = await env.client.post("/api/strategies/bad%20name/validate", json={"text": GOOD},
                              headers=h)
    assert r.status == 400 and "strategy name" in (await r.json())["error"]
    r = await env.client.post("/api/strategies/x/validate", json={"text": ""}, headers=h)
    assert r.status == 400 and "empty" in (await r.json())["error"]


async def test_params_save_versions_and_diff(env: Env) -> None:
    csrf = await env.login()
    h = {"X-CSRF-Token": csrf}
    base = "/api/strategies/paper_momentum"
    listed = await (await env.client.get("/api/strategies")).json()
    assert "paper_momentum" in [s["name"] for s in listed["strategies"]]
    got = await (await env.client.get(base)).json()
    assert got["source"] == "file" and got["text"] == GOOD
    r1 = await (await env.client.post(f"{base}/versions", json={"text": GOOD, "message": "v1"},
                                      headers=h)).json()
    assert r1["ok"] and r1["version"]["version"] == 1 and r1["version"]["author"] == "admin"
    p = await (await env.client.post(f"{base}/params", json={"text": GOOD,
                                                             "params": {"fast": 4}},
                                     headers=h)).json()
    assert p["ok"] and p["summary"]["params"]["fast"] == 4.0
    r2 = await (await env.client.post(f"{base}/versions", json={"text": p["text"],
                                                                "message": "faster"},
                                      headers=h)).json()
    assert r2["version"]["version"] == 2
    bad = await env.client.post(f"{base}/versions", json={"text": p["text"].replace(
        "crossover(", "crossover((")}, headers=h)
    assert bad.status == 422 and not (await bad.json())["ok"]
    vs = await (await env.client.get(f"{base}/versions")).json()
    assert [v["version"] for v in vs["versions"]] == [1, 2]
    d = await (await env.client.get(f"{base}/diff?a=1&b=2")).json()
    assert "-fast = { default = 3" in d["diff"] and "+fast = { default = 4" in d["diff"]
    v1 = await (await env.client.get(f"{base}/versions/1")).json()
    assert v1["text"] == GOOD
    latest = await (await env.client.get(base)).json()
    assert latest["source"] == "store" and latest["version"] == 2
    r = await env.client.get(f"{base}/diff?a=1")
    assert r.status == 400 and "'b'" in (await r.json())["error"]
    r = await env.client.get(f"{base}/versions/9")
    assert r.status == 400


async def test_backtest_button_answers_clearly(env: Env) -> None:
    csrf = await env.login()
    r = await env.client.post("/api/strategies/paper_momentum/backtest", json={"text": GOOD},
                              headers={"X-CSRF-Token": csrf})
    body = await r.json()
    if StrategyService.backtest_available():
        assert r.status in (200, 400), body
        if r.status == 200:
            rep = await (await env.client.get(f"/api/reports/{body['report_id']}")).json()
            assert rep["kind"] == "backtest" and rep["name"] == "paper_momentum"
    else:
        assert r.status == 501 and "not available" in body["error"]
