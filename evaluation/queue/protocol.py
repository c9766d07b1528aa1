"""The bootstrap evaluation protocol of experiment-queue schedulers (Algorithm 4 of Kharitonov
et al., SIGIR 2015), its tables and figure, and an RL agent compared with the schedulers.

The code is split by job, every public name re-exported here: :mod:`.metrics` (AUC, Q(S)),
:mod:`.config` (what to run), :mod:`.runner` (the splits and Algorithm 4), :mod:`.summary`
(confidence intervals, Wilcoxon tests), :mod:`.tables` (Markdown, CSV, figure), :mod:`.worlds`
(several generated worlds: spread across worlds and the paper's findings), :mod:`.calibration`
(the world against the paper's setting),
:mod:`.agent_comparison` and :mod:`.report` (``labsched queue-eval``). The agent itself is
trained in :mod:`labsched.agents.queue`; the splits are
:func:`labsched.envs.queue.splits.stratified_splits`.

All data are **synthetic**: they come from the generative model of
:mod:`labsched.envs.queue.search_world` and :mod:`labsched.envs.queue.features` (the paper's Yandex
logs are private), so the numbers measure the schedulers on that model, not on real traffic.

## The protocol (:func:`run_protocol`)
For each of ``n_splits`` stratified random splits of the dataset's experiments (10% test,
``StratifiedShuffleSplit`` on the success label):

1. the learned schedulers are fitted on the training experiments (once per exploration size,
   the exploration feature of every training experiment drawn at that size; the tuned ones
   reuse the hyperparameters cross-validated without exploration);
2. the test experiments are ranked by every scheduler, ``n_bootstrap`` times (random
   schedulers, random tie-breaks and exploration results are redrawn every time);
3. **AUC** (Equation 4, :func:`schedule_auc`) of each schedule against the realised outcomes
   of the test experiments, and **Q(S)** (Equation 5): the first ``k`` experiments of the
   schedule are "deployed" for ``n`` interactions each, their outcome drawn by resampling
   ``n`` sessions from the experiment's recorded run (``ExperimentDataset.sample_outcomes``,
   ``source="bootstrap"``), and Q counts the successes.

The metric of a split is its mean over the bootstrap repetitions; a table cell reports the mean
over splits with a 95% confidence interval (normal: ``1.96 sd / sqrt(n_splits)``, or a
percentile bootstrap over splits), and the schedulers of a row are compared by paired
two-sided Wilcoxon signed-rank tests over the splits (``scipy.stats.wilcoxon``).

Budgets follow the paper. Exploration of size ``f`` spends ``f * T`` interactions, divided
evenly among the test experiments, and is subtracted from the budget: AUC tables use
``T = n_test * n_auc`` (``n_auc`` = 10^5 interactions per test experiment for interleaving,
2 * 10^6 for A/B tests), so each test experiment is explored with ``f * n_auc`` sessions; Q
tables deploy the ``k`` first-ranked experiments with ``(T - exploration) / k`` interactions
each (interleaving: ``T`` = 3 * 10^5 and 4.5 * 10^5, ``k = 3``; A/B: ``T`` = 4 * 10^6, ``k =
2``); the figure varies ``T = m * 10^5`` with ``k = m``, ``m = 1..6`` (interleaving).
Schedulers that do not explore get the whole ``T``. The outcome draws are common to all
schedulers (common random numbers), and every random draw is seeded from ``(seed, split,
purpose)``, so results do not depend on the number of workers or on which other schedulers
run.

## Differences from the paper, on purpose
* Q(S) uses Equation 5 literally (an experiment counts if the interactions used up to and
  including it fit in ``T``); with equal deployment sizes ``T / k`` this is Algorithm 4's loop.
* The pairwise boosted trees are a RankNet-loss booster (R's ``gbm`` pairwise mode is not
  available) with fixed hyperparameters. LGBM is cross-validated as in the paper (5 folds,
  depth 1-3, learning rate 0.05 or 0.1, up to 100 trees with early stopping; ``tune=False``
  fixes it), and LR's ``C`` by 10-fold cross-validation. Both boosters grow their trees with
  :mod:`labsched.baselines.queue.small_trees` (NumPy, not scikit-learn: the same
  least-squares trees without scikit-learn's per-fit validation, which dominated).
* Tuning happens once per split: the fits with an exploration feature reuse the
  hyperparameters cross-validated on the split's training experiments without exploration
  (``ProtocolConfig.retune_per_exploration=True`` tunes every fit, about 12x the
  cross-validations).
"""

from __future__ import annotations

from labsched.envs._lib.lazy import lazy_attributes, lazy_names
from labsched.envs.queue.splits import stratified_splits
from labsched.evaluation.queue.config import (
    DEFAULT_FIGURE_ENTRIES,
    PAPER_TABLES,
    ProtocolConfig,
    paper_config,
)
from labsched.evaluation.queue.metrics import (
    auc_rows,
    brute_force_best_order,
    expected_q,
    greedy_order,
    schedule_auc,
    schedule_q,
)
from labsched.evaluation.queue.report import QueueEvalResult, queue_eval
from labsched.evaluation.queue.runner import CellKey, ProtocolResult, run_protocol
from labsched.evaluation.queue.summary import PairTest, SummaryRow, scheduler_label, summarize, wilcoxon_p
from labsched.evaluation.queue.tables import figure1_rows, plot_figure1, tables_markdown, write_rows_csv
from labsched.evaluation.queue.worlds import FindingRow, WorldRow, across_worlds, findings, worlds_markdown

# The agent's names load on first use (PEP 562): labsched.agents imports stable-baselines3 and
# torch (the rl extra), which the protocol and ``labsched queue-eval`` without an agent do not need.
_AGENT_MODULES = {
    "labsched.agents.queue": ("AGENT_ENV_KWARGS", "QueueAgentResult", "train_queue_agent"),
    "labsched.evaluation.queue.agent_comparison": (
        "AgentRow",
        "agent_markdown",
        "compare_agent_with_schedulers",
    ),
}
__getattr__, __dir__ = lazy_attributes(__name__, _AGENT_MODULES)


__all__ = [
    "DEFAULT_FIGURE_ENTRIES",
    "PAPER_TABLES",
    "CellKey",
    "FindingRow",
    "PairTest",
    "ProtocolConfig",
    "ProtocolResult",
    "QueueEvalResult",
    "SummaryRow",
    "WorldRow",
    "across_worlds",
    "auc_rows",
    "brute_force_best_order",
    "expected_q",
    "figure1_rows",
    "findings",
    "greedy_order",
    "paper_config",
    "plot_figure1",
    "queue_eval",
    "run_protocol",
    "schedule_auc",
    "schedule_q",
    "scheduler_label",
    "stratified_splits",
    "summarize",
    "tables_markdown",
    "wilcoxon_p",
    "worlds_markdown",
    "write_rows_csv",
    *sorted(lazy_names(_AGENT_MODULES)),
]
