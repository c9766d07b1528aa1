"""Schedulers of the experiment queue: ``view`` (what a scheduler sees), ``base`` (the greedy
rule and SB3's ``predict``), ``simple`` and ``learned`` (the schedulers) and ``schedulers`` (the
registry ``QUEUE_SCHEDULERS``, ``make_queue_scheduler``; re-exports every public name)."""
