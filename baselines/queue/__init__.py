"""Schedulers of the experiment queue: ``view`` (what a scheduler sees), ``base`` (the greedy
rule and SB3's ``predict``), ``simple``, ``learned`` and ``boosted`` (the schedulers; the
boosters grow the NumPy trees of ``small_trees``) and ``schedulers`` (the registry
``QUEUE_SCHEDULERS``, ``make_queue_scheduler``; re-exports every public name)."""
