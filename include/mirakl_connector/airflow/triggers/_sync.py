"""Run blocking code (connections, SQL, HTTP) off the triggerer's event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


async def off_loop(function: Callable[..., T], *args: Any) -> T:
    """``sync_to_async`` when available (Airflow's supported way to read connections from a
    trigger), else a plain worker thread."""
    try:
        from asgiref.sync import sync_to_async
    except ImportError:  # pragma: no cover - asgiref ships with Airflow
        return await asyncio.to_thread(function, *args)
    return await sync_to_async(function)(*args)
