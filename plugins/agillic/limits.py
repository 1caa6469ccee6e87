"""Agillic's own ceilings (developers.agillic.com/integration-guidelines) and how long hub waits for a recipient."""

#: Entries in one batch call (``/recipients/:batch``, ``:batchUpdateRecords``): a hard limit, 400 above it.
MAX_BATCH = 1000
#: Bytes in one request: 20 MB.
MAX_PAYLOAD_BYTES = 20 * 1024 * 1024
#: Calls in flight at once: the 21st is a 429 (nothing changed).
MAX_CONCURRENT = 20
#: Recipients per ``:addToStaticTargetGroup`` / ``:removeFromStaticTargetGroup`` call.
MAX_TARGET_GROUP_CALL = 100
#: Seconds before a purchase, trigger or segment change for a recipient Agillic does not have yet is tried again
#: (its ``contact_upsert`` may still be on its way).
CONTACT_PENDING_RETRY = 60.0
