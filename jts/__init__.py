"""JTS (자동매매시스템): one asyncio process that trades Korean equities and crypto."""

__version__ = "0.1.0"
