"""The ledger's repositories, one per kind of record, each a mixin of :class:`~.store.Ledger`.

Each class here holds the public methods of one kind of record (transfers, refunds, payouts,
Hyperwallet payments, mappings, queues, inbox, outbox, checkpoints, the cutover import, reports),
written against the primitives of :class:`~mirakl_connector.ledger.base.LedgerStore` (its
engine, its transactions, its audited save and its batch reads). Import :class:`Ledger` from
:mod:`mirakl_connector.ledger`, never a repository: workflows receive the one ledger object.
"""
