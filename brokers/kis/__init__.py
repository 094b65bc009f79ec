"""KIS (한국투자증권) Open API adapter; see docs/kis.md."""
