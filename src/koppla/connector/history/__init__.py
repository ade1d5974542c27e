"""Historical order sync: up to five years of orders, through a queue, as platform batches.

request (rules) → sync (start, produce) → producer → queue (koppla.bus) → consumer → worker
(orders read set-based → back-office events → one batch per dataset) → batch_client; the ledger
records progress durably; progress reads it. See docs/connector.md, "Historical orders".
"""
