"""The incumbent connector's batch log lines, kept so that operators' log searches still work.

``[BATCHJOB]`` lines describe a run, ``[BATCHJOBITEM]`` lines one item, e.g.::

    [BATCHJOB] Retrieving shops since Tue Apr 18 12:41:42 UTC 2023
    [BATCHJOB] Shops retrieved [78766,78764]
    [BATCHJOBITEM] Processing item of type BankAccount with id: 78766
    [BATCHJOBITEM] 1 items processed successfully. 0 items failed. 2 items remaining

They go to the task log through :mod:`logging`. Nothing here may print an account number: the
callers pass masked values (:func:`mirakl_connector.hyperwallet.bank_accounts.mask`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime

log = logging.getLogger("mirakl_connector.hyperwallet.batch")


def java_date(value: datetime) -> str:
    """``Tue Apr 18 12:41:42 UTC 2023`` (how the incumbent printed dates), in UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%a %b %d %H:%M:%S UTC %Y")


class BatchLog:
    """Counts items and writes the batch lines of one run."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._log = logger or log
        self.ok = 0
        self.failed = 0
        self.total = 0

    def job(self, message: str, *args: object) -> None:
        self._log.info("[BATCHJOB] " + message, *args)

    def item(self, message: str, *args: object) -> None:
        self._log.info("[BATCHJOBITEM] " + message, *args)

    def started(self) -> None:
        self.job("Starting processing of job")
        self.job("Starting extraction of items to be processed")

    def retrieving_since(self, since: datetime) -> None:
        self.job("Retrieving shops since %s", java_date(since))

    def retrieving_ids(self, ids: Iterable[str]) -> None:
        self.job("Retrieving shops with ids [%s]", ",".join(ids))

    def shops_retrieved(self, ids: Iterable[str]) -> None:
        self.job("Shops retrieved [%s]", ",".join(ids))

    def retrieved(self, count: int) -> None:
        self.total = count
        self.job("Retrieved the following number of items to be processed: %d", count)

    def processing(self, item_type: str, item_id: str) -> None:
        self.item("Processing item of type %s with id: %s", item_type, item_id)

    def processed(self, item_type: str, item_id: str, *, success: bool) -> None:
        if success:
            self.ok += 1
            self.item("Processed successfully item of type %s with id: %s", item_type, item_id)
        else:
            self.failed += 1
            self.item("Failed processing item of type %s with id: %s", item_type, item_id)
        left = max(self.total - self.ok - self.failed, 0)
        self.item(
            "%d items processed successfully. %d items failed. %d items remaining",
            self.ok,
            self.failed,
            left,
        )

    def validation_failed(self, item_type: str, item_id: str, reason: str) -> None:
        self.item(
            "Validation of item of type %s with id: %s has failed with the following message: %s",
            item_type,
            item_id,
            reason,
        )

    def finished(self) -> None:
        self.job("Finished processing of job")

    def crashed(self) -> None:
        self.job("Job failed")
