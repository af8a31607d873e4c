"""From a composed issue to one message per recipient, handed to a transport exactly once.

    message (+ signing) -> campaign -> dispatch (ratelimit, ledger, journal) -> transports
    schedule decides what `send --due` sends; review sends test copies; report reads the
    ledger back for `status`.
"""
