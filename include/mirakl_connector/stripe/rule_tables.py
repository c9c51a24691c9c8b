"""The Stripe decision ladders' rule tables: the one source of the tables in the README and in the
DAGs' ``doc_md`` (``scripts/render_rule_tables.py`` writes them there; a test fails when a copy
is out of date, or when a reason text of a ladder is missing from its table).

A light module beside the decision modules, which import the ledger and the Stripe SDK: the
tables are plain data, so nothing here costs an import. Each table lists its ladder's rules in
the order they are checked (first match wins), including the checks the workflow makes around
the ladder (go-live, payout provider, payment claims), in the place they take.
"""

from __future__ import annotations

from mirakl_connector.core.rule_tables import Rule, RuleTable

_BEFORE_GO_LIVE = "created …, before go_live …: not moved"
_OTHER_PROVIDER = "Shop … is paid by Hyperwallet, not Stripe (the rule that said so)"
_UNSUPPORTED = "Currency … is not supported by Stripe (see https://docs.stripe.com/currencies)"
_AMOUNT = "Amount must be positive, input was: …"
_TOO_SMALL = "Amount is below the smallest … Stripe allows in …"
_CANCELED = "Payment … has been canceled"
_FAILED = "Payment … failed"
_NOT_CAPTURED = "Payment … is not ready yet, status is succeeded (not captured)"
_NOT_READY = "Payment … is not ready yet, status is …"
_NO_CHARGE = "Payment … has no charge yet"
_STRIPES_MESSAGE = "Stripe's message"

#: :func:`.transfer_decisions.decide_order_transfer` (``stripe_payment_split``).
TRANSFER_RULES = RuleTable(
    key="stripe-transfer",
    ladder="mirakl_connector.stripe.transfer_decisions",
    functions=("decide_order_transfer", "check_payment", "_check_charge"),
    dags=("stripe_payment_split.py",),
    rules=(
        Rule("Transfer already created", "`TRANSFER_CREATED`"),
        Rule(
            "Order created before `go_live` and not in the ledger yet",
            "`BEFORE_GO_LIVE` (counted, never recorded or moved)",
            (_BEFORE_GO_LIVE,),
        ),
        Rule(
            "Another provider pays the shop at the order's date (`payout_provider` rule: "
            "`shops`, `hw-program`, `default`)",
            "`TRANSFER_ABORTED`",
            (_OTHER_PROVIDER,),
        ),
        Rule("A currency Stripe does not support", "`TRANSFER_FAILED`", (_UNSUPPORTED,)),
        Rule("No shop id on the order", "`TRANSFER_ON_HOLD`", ("No shop ID provided",)),
        Rule(
            "No Stripe account mapped to the shop",
            "`TRANSFER_ON_HOLD`",
            ("Cannot find Stripe account for shop ID …",),
        ),
        Rule(
            "Tax transfer (`<order id>_TAX`) while the tax split is disabled",
            "`TRANSFER_ON_HOLD`",
            ("Tax split is disabled; enable it to transfer the tax",),
        ),
        Rule(
            "Tax transfer without `payment_split.tax_account`",
            "`TRANSFER_ON_HOLD`",
            ("No stripe account ID provided",),
        ),
        Rule("Shop flagged ignored", "`TRANSFER_IGNORED`", ("Shop … is ignored",)),
        Rule(
            "Seller's account verification status not known yet (no KYC status: not seen by "
            "onboarding, the KYC monitor or `account.updated`; unknown is not verified)",
            "`TRANSFER_ON_HOLD`",
            (
                "Stripe account … verification status is not known yet "
                "(waiting for the KYC monitor or an account.updated event)",
            ),
        ),
        Rule(
            "Seller's account not verified (KYC PENDING_SUBMISSION, PENDING_APPROVAL, REFUSED); "
            "not for the tax transfer",
            "`TRANSFER_ON_HOLD`",
            ("Stripe account … is not verified yet (KYC …)",),
        ),
        Rule(
            "Order refused / cancelled (service: refused, expired, cancelled)",
            "`TRANSFER_ABORTED`",
            ("Order cannot be processed, status is …",),
        ),
        Rule(
            "Order not accepted yet, or not debited (service: no OK debit)",
            "`TRANSFER_ON_HOLD`",
            ("Order is not ready yet, status is …",),
        ),
        Rule(
            "Payment intent cancelled, charge failed or refunded",
            "`TRANSFER_ABORTED`",
            (_CANCELED, _FAILED),
        ),
        Rule(
            "Payment not succeeded or not captured yet, or an intent without a charge",
            "`TRANSFER_ON_HOLD`",
            (_NOT_READY, _NOT_CAPTURED, _NO_CHARGE),
        ),
        Rule("Payment unknown to Stripe", "`TRANSFER_ABORTED`", note=_STRIPES_MESSAGE),
        Rule(
            "Amount (amount due − operator commission [− tax], in minor units) ≤ 0",
            "`TRANSFER_ABORTED`",
            (_AMOUNT,),
        ),
        Rule(
            "Amount below the smallest transfer Stripe can express in the currency",
            "`TRANSFER_ABORTED`",
            (_TOO_SMALL,),
        ),
        Rule(
            "Above `approval.transfer_above` and not approved for this amount and destination "
            "on the payments console (off by default; the next scheduled run after the approval "
            "sends it, once)",
            "`TRANSFER_ON_HOLD`",
            ("awaiting approval: … is above approval.transfer_above …",),
        ),
        Rule(
            "The order is already claimed by the other provider (payment claims)",
            "`TRANSFER_ABORTED`",
            ("Order … is already claimed for payment by hyperwallet (…): not paid by stripe",),
        ),
        Rule(
            "Otherwise",
            "`TRANSFER_PENDING`, then `TRANSFER_CREATED` or `TRANSFER_FAILED`",
            note="Stripe's message on failure",
        ),
    ),
)

#: :func:`.refund_decisions.decide_refund` (``stripe_payment_refund``).
REFUND_RULES = RuleTable(
    key="stripe-refund",
    ladder="mirakl_connector.stripe.refund_decisions",
    functions=("decide_refund", "_check_payment", "_check_intent"),
    dags=("stripe_payment_refund.py",),
    rules=(
        Rule(
            "Refunded in Stripe already: validated in Mirakl, or not yet",
            "`REFUND_CREATED`, or `REFUND_PENDING` (only the Mirakl validation left)",
        ),
        Rule(
            "New refund of an order created before `go_live` (the order's date: its transfer "
            "row, else OR11/SOR11 by id)",
            "`BEFORE_GO_LIVE` (counted, never recorded or moved)",
            (_BEFORE_GO_LIVE,),
        ),
        Rule(
            "Another provider pays the order's shop at the order's date",
            "`REFUND_ABORTED`",
            (_OTHER_PROVIDER,),
        ),
        Rule("Amount ≤ 0", "`REFUND_ABORTED`", (_AMOUNT,)),
        Rule("A currency Stripe does not support", "`REFUND_FAILED`", (_UNSUPPORTED,)),
        Rule(
            "Amount below the smallest refund Stripe can express in the currency",
            "`REFUND_ABORTED`",
            (_TOO_SMALL,),
        ),
        Rule(
            "No payment (the order transfer's charge, else the payment mapping)",
            "`REFUND_ON_HOLD`",
            ("Cannot find the ID of the payment to be refunded",),
        ),
        Rule("Payment unknown to Stripe", "`REFUND_ABORTED`", note=_STRIPES_MESSAGE),
        Rule(
            "Payment cancelled, failed or already refunded",
            "`REFUND_ABORTED`",
            (_CANCELED, _FAILED),
        ),
        Rule(
            "Payment not captured yet (an intent still in `requires_*` is cancelled, as the "
            "Stripe connector does), or an intent without a charge",
            "`REFUND_ON_HOLD`",
            (_NOT_READY, _NOT_CAPTURED, _NO_CHARGE),
        ),
        Rule(
            "The refund is already claimed by the other provider",
            "`REFUND_ABORTED`",
            ("Refund … is already claimed for payment by hyperwallet (…): not paid by stripe",),
        ),
        Rule(
            "Otherwise",
            "`REFUND_PENDING`, then `REFUND_CREATED` or `REFUND_FAILED`",
            note="Stripe's or Mirakl's message on failure",
        ),
    ),
)

#: :func:`.refund_decisions.decide_reversal` (``stripe_payment_refund``, ``reverse_transfers``):
#: each refund's ``TRANSFER_REFUND`` row, and its ``<refund id>_TAX`` row with the tax split.
REVERSAL_RULES = RuleTable(
    key="stripe-reversal",
    ladder="mirakl_connector.stripe.refund_decisions",
    functions=("decide_reversal",),
    dags=("stripe_payment_refund.py",),
    rules=(
        Rule("Reversed in Stripe already (the row has its `trr_` id)", "`TRANSFER_CREATED`"),
        Rule(
            "No refund row in the ledger for it (its id without `_TAX`)",
            "`TRANSFER_ON_HOLD`",
            ("Cannot find StripeRefund with ID …",),
        ),
        Rule(
            "The customer refund was aborted", "`TRANSFER_ABORTED`", ("Refund … has been aborted",)
        ),
        Rule(
            "The customer refund is not refunded and validated yet (not `REFUND_CREATED`; the "
            "row is created with this reason)",
            "`TRANSFER_ON_HOLD`",
            ("Refund … has yet to be validated",),
        ),
        Rule(
            "Tax row (`<refund id>_TAX`) while the tax split is disabled",
            "`TRANSFER_ON_HOLD`",
            ("Tax split is disabled; enable it to reverse the tax",),
        ),
        Rule(
            "The order transfer (`<order id>_TAX` for the tax row) was never made: "
            "`TRANSFER_ABORTED` or `TRANSFER_IGNORED`",
            "`TRANSFER_ABORTED` (nothing to take back)",
            ("Nothing to reverse: the order transfer … is …",),
        ),
        Rule(
            "The order transfer is not made yet (not in the ledger, or not `TRANSFER_CREATED` "
            "with its `tr_` id)",
            "`TRANSFER_ON_HOLD`",
            ("Payment split has to occur before the transfer can be reversed for a refund",),
        ),
        Rule(
            "The refund is not found in its Mirakl order (OR11/SOR11 by id; the order is read "
            "only for a reversal that gets this far)",
            "`TRANSFER_ON_HOLD`",
            ("Refund … is not found in its order",),
        ),
        Rule(
            "Amount (refund − refunded commission [− refunded tax with the tax split]; the tax "
            "row: the refunded tax; in minor units) ≤ 0",
            "`TRANSFER_ABORTED`",
            (_AMOUNT,),
        ),
        Rule("A currency Stripe does not support", "`TRANSFER_FAILED`", (_UNSUPPORTED,)),
        Rule(
            "Amount below the smallest reversal Stripe can express in the currency",
            "`TRANSFER_ABORTED`",
            (_TOO_SMALL,),
        ),
        Rule(
            "Otherwise",
            "`TRANSFER_PENDING`, then `TRANSFER_CREATED` or `TRANSFER_FAILED`",
            note=_STRIPES_MESSAGE + " on failure",
        ),
    ),
)

#: :func:`.settlement_decisions.decide_invoice_transfer` and :func:`.decide_payout`
#: (``stripe_seller_settlement``): the invoice's three transfers (``TRANSFER_*``) and its payout
#: (``PAYOUT_*``) share the ladder; ``*`` stands for either.
SETTLEMENT_RULES = RuleTable(
    key="stripe-settlement",
    ladder="mirakl_connector.stripe.settlement_decisions",
    functions=("decide_invoice_transfer", "decide_payout"),
    dags=("stripe_seller_settlement.py",),
    rules=(
        Rule(
            "Already created (a payout that failed at the bank afterwards and was not reopened "
            "is `PAYOUT_FAILED`)",
            "`*_CREATED` / `PAYOUT_FAILED`",
            (
                "Payout … failed after it was created…; check the seller's bank details, then "
                "pay out again from the Stripe dashboard",
            ),
        ),
        Rule(
            "Invoice created before `go_live` and not in the ledger yet",
            "`BEFORE_GO_LIVE` (counted with its payout amount, never recorded or moved)",
            (_BEFORE_GO_LIVE,),
        ),
        Rule(
            "Another provider pays the shop at the invoice's date",
            "`*_ABORTED`",
            (_OTHER_PROVIDER,),
        ),
        Rule("No shop id on the invoice", "`*_ABORTED`", ("No shop ID provided",)),
        Rule("Amount ≤ 0", "`*_ABORTED`", (_AMOUNT,)),
        Rule("A currency Stripe does not support", "`*_FAILED`", (_UNSUPPORTED,)),
        Rule(
            "Amount below the smallest transfer or payout Stripe can express in the currency "
            "(HUF and TWD pay out whole units: the rest stays on the seller's balance)",
            "`*_ABORTED`",
            (_TOO_SMALL,),
        ),
        Rule(
            "No Stripe account for the shop",
            "`*_ON_HOLD`",
            ("Cannot find Stripe account for shop ID …",),
        ),
        Rule(
            "Shop flagged ignored (the Stripe connector moved its money regardless)",
            "`*_ON_HOLD`",
            ("Shop … is ignored",),
        ),
        Rule(
            "Payouts disabled on the account (payout)",
            "`PAYOUT_ON_HOLD`",
            ("Payouts are disabled for shop ID …",),
        ),
        Rule(
            "Account's KYC status not known yet (payout, extra credits: money *to* the "
            "seller's account)",
            "`*_ON_HOLD`",
            (
                "Stripe account … verification status is not known yet "
                "(waiting for the KYC monitor or an account.updated event)",
            ),
        ),
        Rule(
            "Above `approval.transfer_above` / `approval.payout_above`, or the first payout to "
            "the account (`approval.first_payout_to_new_account`), and not approved for this "
            "amount and destination (off by default)",
            "`*_ON_HOLD`",
            ("awaiting approval: first payout to acct_…",),
        ),
        Rule(
            "The invoice is already claimed by the other provider",
            "`*_ABORTED`",
            ("Invoice … is already claimed for payment by hyperwallet (…): not paid by stripe",),
        ),
        Rule(
            "When sent (`create_payouts`): an invoice transfer of the same invoice not settled "
            "yet (fees are collected first)",
            "`PAYOUT_ON_HOLD`",
            ("Waiting for the invoice transfers of invoice …: …",),
        ),
        Rule(
            "When sent: not enough available on the Stripe balance (`balance_insufficient`)",
            "`*_ON_HOLD`",
            (
                "Waiting for funds: … to pay out, … available on … (balance_insufficient); "
                "expected available on … UTC",
            ),
        ),
        Rule(
            "Otherwise",
            "`*_PENDING`, then `*_CREATED` or `*_FAILED` (retried next run with a new key)",
            note=_STRIPES_MESSAGE + " on failure",
        ),
    ),
)

#: :func:`.capture_decisions.decide_capture`, then :func:`.capture_decisions.settle_refused` when
#: Stripe refuses the capture or release for good (``stripe_payment_validation``,
#: ``capture_payments``: one payment mapping in ``to_capture`` and its OR11 orders).
CAPTURE_RULES = RuleTable(
    key="stripe-capture",
    ladder="mirakl_connector.stripe.capture_decisions",
    functions=("decide_capture", "settle_refused", "_canceled"),
    dags=("stripe_payment_validation.py",),
    headers=("Condition", "Action (payment mapping status)", "Reason"),
    rules=(
        Rule(
            "Mirakl returns no order of the commercial order",
            "wait (`to_capture`)",
            ("Commercial order … is not returned by Mirakl",),
        ),
        Rule(
            "An order still STAGING, WAITING_ACCEPTANCE, WAITING_DEBIT or WAITING_DEBIT_PAYMENT",
            "wait (`to_capture`)",
            ("Order … is not ready yet, status is …",),
        ),
        Rule(
            "An order accepted but not debited yet",
            "wait (`to_capture`)",
            ("Order … is not debited yet, status is …",),
        ),
        Rule(
            "The orders mix currencies",
            "fail (`failed`)",
            ("Orders of … mix currencies (…)",),
        ),
        Rule(
            "No authorised amount recorded on the mapping",
            "fail (`failed`)",
            ("Payment … has no recorded amount",),
        ),
        Rule(
            "Nothing left once refused lines (`total_price` + taxes) and cancelled lines "
            "(`cancelations`) are taken off the authorised amount",
            "release the authorisation (`canceled`)",
            ("Every order was refused or cancelled…",),
        ),
        Rule(
            "Otherwise: capture what is left, in Stripe's unit (rounded down)",
            "capture (`captured`, with `captured_amount`)",
        ),
        Rule(
            "Stripe refuses for good, and the payment was already captured (e.g. at checkout)",
            "`captured`",
            ("Payment … was already captured in Stripe (…)",),
        ),
        Rule(
            "Stripe refuses for good, and the authorisation expired or was cancelled",
            "`canceled` (a release) / `failed` (a capture)",
            (
                "Payment … was already released",
                "Payment … can no longer be captured, status is … (…)",
            ),
        ),
        Rule(
            "Stripe refuses for good, for any other reason (amount too large...)",
            "`failed` (terminal: never retried forever)",
            ("Stripe refused to …: …",),
        ),
    ),
)

#: Every Stripe table, in the README's order.
TABLES = (TRANSFER_RULES, CAPTURE_RULES, REFUND_RULES, REVERSAL_RULES, SETTLEMENT_RULES)
