"""What runs beside the money movements of either provider: the approval gate, alerts and
operator e-mails, retry backlogs, the payout-provider rule that keeps one invoice on one provider.
"""
