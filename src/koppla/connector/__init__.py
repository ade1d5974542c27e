"""The store side: reads a Magento 2 shop database and delivers its order lifecycle as XDM events.

Entry points: `koppla.connector.commands.connector_app` (the `koppla connector ...` commands) and
`koppla.connector.runner.run_connector` (the scheduled loop, for `koppla up --demo`).
"""
