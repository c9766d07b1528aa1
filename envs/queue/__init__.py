"""The experiment-queue world (Kharitonov et al.): search world, pre-experiment features and the
queue environment. Independent of :mod:`labsched.envs.labs` and :mod:`labsched.envs.bo`.

Modules, bottom up: ``world_spec`` (the world's parameters), ``interleaving`` (Team Draft,
credit, clicks), ``significance`` (tests and power), ``records`` (plain records),
``search_world`` (the world; re-exports the modules below it), ``offline_metrics``,
``click_model`` (sDBN, Algorithms 1-3), ``feature_vectors``, ``dataset``, ``generation``,
``features`` (re-exports the feature and dataset modules), ``splits`` (stratified splits),
``env_config`` and ``experiment_queue`` (the Gymnasium environment).
"""
