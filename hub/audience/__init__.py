"""Audiences: computed attributes, segments, triggers and contact pressure (design steps 5 to 7).

- compute: ``attributes.py`` (set-based SQL per customer and product group), ``rfm.py`` (scores, named segments,
  tiers), ``clv.py`` (BG/NBD and Gamma-Gamma), over the attribute reference in ``catalog.py``;
- segments: ``expressions.py`` (the safe expression language, compiled to SQL), ``segments.py`` (membership and
  entered/left), ``push.py`` (pushed membership, diffed per destination);
- triggers: ``triggers.py`` (events and dates to candidates), ``payloads.py``, ``variants.py`` (stable A/B/n);
- contact pressure: ``policy.py`` (send, hold or suppress, in ``contact_log``; sends to the outbox), ``explain.py``.

``pipeline.py`` runs them in order at one ``now`` from ``Hub.clock``; ``commands.py`` is their command line.
"""
