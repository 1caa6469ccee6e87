"""Audiences: computed attributes, segments, triggers and contact pressure (design steps 5 to 7).

``compute`` (attributes.py, clv.py) -> ``segments`` (expressions.py, segments.py) -> ``triggers`` (triggers.py,
payloads.py) -> ``policy`` (policy.py: send, hold or suppress, written to ``contact_log``; sends go to the outbox)
-> ``explain`` (explain.py). ``pipeline.py`` runs them in order with one ``now`` from ``Hub.clock``.
"""
