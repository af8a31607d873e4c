"""The SQL of SubscriberStore.merge: a whole file of rows merged in a few set operations.

Rows go into a temporary table first, so that duplicates and the comparison with the store
are a few statements in SQLite instead of a million round trips. Each row ends in one
state: added, updated, unchanged, suppressed (left alone: the address left, or was
erased), or unsubscribed, bounced, complained (the row recorded that the address left).
"""

from __future__ import annotations

from ..states import SUPPRESSED_STATUSES

STAGING = """
    DROP TABLE IF EXISTS temp.import_rows;
    CREATE TEMP TABLE import_rows (row INTEGER PRIMARY KEY, key TEXT NOT NULL,
        email TEXT NOT NULL, name TEXT NOT NULL, fields TEXT NOT NULL, status TEXT NOT NULL,
        status_at TEXT NOT NULL, reason TEXT NOT NULL, consent_at TEXT NOT NULL,
        confirmed_at TEXT NOT NULL, sid INTEGER, state TEXT);
"""
DUPLICATES = """
    SELECT r.row, d.first
    FROM (SELECT key, min(row) AS first FROM import_rows GROUP BY key HAVING count(*) > 1) d
    JOIN import_rows r ON r.key = d.key AND r.row > d.first ORDER BY r.row
"""
SUPPRESSING = tuple(SUPPRESSED_STATUSES)  # the statuses a file may record
MERGE = (
    # A row that says the address left (a Mailchimp unsubscribed or cleaned export, a
    # status column) suppresses a subscriber who is active or pending, and no one else.
    """UPDATE import_rows SET sid = s.id, state = CASE
        WHEN import_rows.status != 'active' THEN
            iif(s.status IN ('active', 'pending'), import_rows.status, 'unchanged')
        WHEN (s.status = 'bounced' AND NOT :bounced)
          OR (s.status IN ('unsubscribed', 'complained') AND NOT :resub)
          OR (m.status = 'unsubscribed' AND NOT :resub) THEN 'suppressed'
        WHEN s.status != 'active' OR m.status IS NOT 'active' THEN 'added'
        WHEN (import_rows.name != '' AND import_rows.name != s.name)
          OR json_patch(s.fields, import_rows.fields) != s.fields THEN 'updated'
        ELSE 'unchanged' END
    FROM subscribers s LEFT JOIN memberships m
        ON m.subscriber_id = s.id AND m.list_id = (SELECT id FROM lists WHERE name = :list)
    WHERE s.key = import_rows.key""",
    # An erased address is known by its keyed hash only; nothing but its owner's own
    # confirmation on the sign-up form brings it back.
    """UPDATE import_rows SET state = iif(status = 'active', 'suppressed', 'unchanged')
    WHERE EXISTS (SELECT 1 FROM erased) AND address_hash(key) IN (SELECT hash FROM erased)""",
    """UPDATE import_rows SET state = iif(status = 'active', 'added', status)
    WHERE sid IS NULL AND state IS NULL""",
    # Empty cells never erase what the store knows; a resubscription is dated.
    """UPDATE subscribers SET
        name = CASE WHEN r.name != '' THEN r.name ELSE subscribers.name END,
        fields = json_patch(subscribers.fields, r.fields),
        status = 'active',
        status_changed_at = CASE WHEN subscribers.status != 'active' THEN :now
                                 ELSE subscribers.status_changed_at END,
        status_reason = CASE WHEN subscribers.status != 'active' THEN :reason
                             ELSE subscribers.status_reason END
    FROM import_rows r WHERE r.sid = subscribers.id AND r.state IN ('added', 'updated')""",
    """UPDATE subscribers SET status = r.status, status_reason = r.reason,
        status_changed_at = coalesce(nullif(r.status_at, ''), :now)
    FROM import_rows r WHERE r.sid = subscribers.id
        AND r.state IN ('unsubscribed', 'bounced', 'complained')""",
    # Of someone who left, only the address and the when and why are kept.
    """INSERT INTO subscribers (email, key, name, fields, status, status_changed_at,
                                status_reason, created_at)
    SELECT email, key, iif(status = 'active', name, ''),
           iif(status = 'active', json_patch('{}', fields), '{}'), status,
           iif(status = 'active', :now, coalesce(nullif(status_at, ''), :now)),
           iif(status = 'active', :reason, reason), :now
    FROM import_rows WHERE sid IS NULL AND state NOT IN ('suppressed', 'unchanged')
    ORDER BY row""",
    """INSERT INTO memberships (subscriber_id, list_id, status, changed_at, reason)
    SELECT s.id, (SELECT id FROM lists WHERE name = :list), 'active', :now, :reason
    FROM import_rows r JOIN subscribers s ON s.key = r.key WHERE r.state = 'added'
    ON CONFLICT (list_id, subscriber_id) DO UPDATE SET status = 'active',
        changed_at = excluded.changed_at, reason = excluded.reason
        WHERE memberships.status != 'active'""",
    # The global status suppresses; an unsubscribe is also the list's, as Mailchimp's is.
    """INSERT INTO memberships (subscriber_id, list_id, status, changed_at, reason)
    SELECT s.id, (SELECT id FROM lists WHERE name = :list),
           iif(r.status = 'unsubscribed', 'unsubscribed', 'active'),
           coalesce(nullif(r.status_at, ''), :now), r.reason
    FROM import_rows r JOIN subscribers s ON s.key = r.key
    WHERE r.state IN ('unsubscribed', 'bounced', 'complained')
    ON CONFLICT (list_id, subscriber_id) DO UPDATE SET status = excluded.status,
        changed_at = excluded.changed_at, reason = excluded.reason
        WHERE excluded.status = 'unsubscribed' AND memberships.status = 'active'""",
    # Every way onto a list is a consent record: when (Mailchimp's OPTIN_TIME and
    # CONFIRM_TIME if the file has them, else now) and from where; the wording is unknown.
    """INSERT INTO consents (subscriber_id, lists, source, given_at, confirmed_at)
    SELECT s.id, json_array(:list), :source, coalesce(nullif(r.consent_at, ''), :now),
           nullif(r.confirmed_at, '')
    FROM import_rows r JOIN subscribers s ON s.key = r.key WHERE r.state = 'added'
    ORDER BY r.row""",
)
