"""The Creon (대신증권) bridge: an RPyC service that runs on the Windows machine next to
Creon Plus and exposes explicit, authenticated methods over Creon's COM objects.

Not built yet: the Creon adapter has no issue of its own so far. The design it will follow is
in docs/architecture.md and ../shared/design/ARCHITECTURE.md (explicit ``exposed_*`` methods
with plain values only, never classic mode, one COM thread, authentication, a fake COM layer
for tests on Linux).
"""
