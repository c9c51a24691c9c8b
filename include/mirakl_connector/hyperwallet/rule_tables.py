"""The Hyperwallet decision ladders' rule tables, as :mod:`mirakl_connector.stripe.rule_tables`
(one source for the README and the DAGs' doc_md; plain data, nothing to import)."""

from __future__ import annotations

from mirakl_connector.core.rule_tables import Rule, RuleTable

#: :func:`.payment_decisions.plan_invoice_payments` with the checks
#: :mod:`.invoice_payments` makes around it (``hyperwallet_invoice_payments``): one invoice
#: (IV01) or billing cycle (SBC11) and its shop as S20 returns it. Outcomes are the run's, with
#: the ledger status of the payment rows where one is recorded.
INVOICE_PAYMENT_RULES = RuleTable(
    key="hyperwallet-invoice-payment",
    ladder="mirakl_connector.hyperwallet.payment_decisions",
    functions=("plan_invoice_payments",),
    dags=("hyperwallet_invoice_payments.py",),
    headers=("Condition", "Outcome", "Reason"),
    rules=(
        Rule(
            "Invoice created before `go_live` and not in the ledger yet",
            "`BEFORE_GO_LIVE` (counted, never recorded or paid)",
            ("created …, before go_live …: not moved",),
        ),
        Rule(
            "Shop returned by Mirakl (S20), not TERMINATED, without `hw-program`",
            "`SKIPPED` (for good)",
            ("shop … has no hw-program (not paid through Hyperwallet)",),
        ),
        Rule(
            "... whose `hw-program` is a configured program flagged ignored",
            "`SKIPPED` (for good)",
            ("program … is ignored",),
        ),
        Rule(
            "Another provider pays the shop at the invoice's date (`payout_provider` rule; "
            "checked before any hold: a hold must not wait for a shop Stripe pays)",
            "`NOT_HYPERWALLET`",
            ("Shop … is paid by Stripe, not Hyperwallet (the rule that said so)",),
        ),
        Rule(
            "Shop not returned by Mirakl (S20)",
            "`ON_HOLD` (retried)",
            ("shop … is not returned by Mirakl (S20)",),
        ),
        Rule(
            "Shop TERMINATED in Mirakl", "`ON_HOLD` (retried)", ("shop … is TERMINATED in Mirakl",)
        ),
        Rule(
            "An `hw-program` that is not a configured program",
            "`ON_HOLD` (retried)",
            ("shop … has hw-program …, which is not a configured program (known: …)",),
        ),
        Rule(
            "No `hw-bankaccount-token` on the shop yet (the bank account extract has not run)",
            "`ON_HOLD` (`HW_PAYMENT_ON_HOLD`; paid by `hyperwallet_retries` once it is there)",
            (
                "shop … has no hw-bankaccount-token yet (the bank account extract has not "
                "created its Hyperwallet bank account)",
            ),
        ),
        Rule(
            "The invoice is already claimed by the other provider (payment claims; claimed for "
            "Hyperwallet just before its first payment is sent)",
            "`NOT_HYPERWALLET`",
            ("Invoice … is already claimed for payment by stripe (…): not paid by hyperwallet",),
        ),
        Rule(
            "Seller amount 0 / negative",
            "no seller payment / `REFUSED` (`HW_PAYMENT_ABORTED`, never sent)",
            ("seller amount is 0: no seller payment", "seller amount is negative (…): not sent"),
        ),
        Rule(
            "Operator commission (`operator_commissions`; never on a credit note) 0",
            "no operator payment",
            ("operator commission is 0: no operator payment",),
        ),
        Rule(
            "Operator commission negative (manual credits larger than the commission)",
            "`REFUSED` (`HW_PAYMENT_ABORTED`, never sent)",
            (
                "operator commission is negative (…): manual credits exceed the commission; "
                "refused, not sent to Hyperwallet",
            ),
        ),
        Rule(
            "No `bank_account_token` on the program (operator commission)",
            "`ON_HOLD` (`HW_PAYMENT_ON_HOLD`)",
            ("program … has no bank_account_token for the operator commission",),
        ),
        Rule(
            "Held by a person on the payments console",
            "`HELD` (not sent until released)",
        ),
        Rule(
            "Above `approval.payout_above`, or the first payout to the bank account, and not "
            "approved (the approval gate; off by default)",
            "`AWAITING_APPROVAL` (`HW_PAYMENT_ON_HOLD`)",
            ("awaiting approval: …",),
        ),
        Rule(
            "Otherwise",
            "`PAID` (`HW_PAYMENT_PENDING` → `CREATED` → `COMPLETED`), or `ALREADY_PAID`",
            note="Hyperwallet's message on failure (`FAILED`, retried)",
        ),
    ),
)

#: Every Hyperwallet table, in the README's order.
TABLES: tuple[RuleTable, ...] = (INVOICE_PAYMENT_RULES,)
