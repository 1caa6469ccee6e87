"""The built-in follow-up-purchase recommender, and recommender connectors asked with a bounded wait.

:mod:`~hub.recommend.followups` learns from the orders what buyers of each product and group bought next;
:mod:`~hub.recommend.rank` and :mod:`~hub.recommend.builtin` rank suggestions for a batch of requests;
:mod:`~hub.recommend.fallback` asks a connector and lets the built-in answer what it cannot in time;
:mod:`~hub.recommend.blocks` makes trigger payloads' ``recommendations`` block. docs/recommend.md tells the whole.
"""

from hub.recommend.blocks import Want, answer, recommendation_blocks
from hub.recommend.builtin import recommend_builtin, settings_of
from hub.recommend.fallback import BUILTIN, Answer, FallbackStats, ask
from hub.recommend.followups import FollowupSummary, Rule, compute_followups, last_computed, read_followups

__all__ = [
    "BUILTIN",
    "Answer",
    "FallbackStats",
    "FollowupSummary",
    "Rule",
    "Want",
    "answer",
    "ask",
    "compute_followups",
    "last_computed",
    "read_followups",
    "recommend_builtin",
    "recommendation_blocks",
    "settings_of",
]
