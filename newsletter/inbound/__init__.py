"""The way back in: reports about sent messages become events that keep the list clean.

    mail server --pipe--> receive.py ----\
    bounce mailbox --IMAP--> mailbox.py --+--> parse.py: DSN, ARF, auto-reply, flufl --\
    webhooks on `newsletter serve`: postmark.py, sendgrid.py, mailgun.py, ses.py (sns.py) +
        -> Findings (report.py) -> intake.py: prove the delivery (a signed return-path
           token, or a Message-ID of ours), store the event once, and apply what
           classify.py says it means to the subscriber store

Every intake turns what it received into `Finding`s (report.py): the kind (hard, soft,
blocked, complaint), the status code and diagnostic, and the keys that name a delivery.
A new provider is one more module that verifies its requests and makes Findings with
classify.kind_of(); matching, storage and suppression are shared.
"""
