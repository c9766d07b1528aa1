"""Reports of the experiment queue: the paper's Algorithm-4 protocol and its tables.

Modules: ``metrics`` (AUC, Q(S)), ``config``, ``runner`` (splits and Algorithm 4), ``summary``
(confidence intervals, Wilcoxon tests), ``tables`` (Markdown, CSV, figure), ``agent_comparison``
(a trained agent against the schedulers), ``report`` (``queue_eval``) and ``protocol`` (re-exports
every public name).
"""
