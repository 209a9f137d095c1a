"""Training on one device, several GPUs, or several machines, with ``tf.distribute``.

The strategy comes from ``LML_DISTRIBUTION`` (the Makefile's ``DISTRIBUTION``):

- ``default``: TensorFlow's default strategy, one device (what a laptop uses);
- ``mirrored``: ``MirroredStrategy``, every GPU of this machine (or the CPU when there is none);
- ``multi-worker``: ``MultiWorkerMirroredStrategy`` across machines listed in ``TF_CONFIG``,
  e.g. on the first of two machines::

      TF_CONFIG='{"cluster": {"worker": ["10.0.0.1:12345", "10.0.0.2:12345"]},
                  "task": {"type": "worker", "index": 0}}' make run-all DISTRIBUTION=multi-worker

  and the same command with ``"index": 1`` on the second. Every worker runs the same
  notebooks on its own copy of the data (built deterministically); ``fit`` shards each
  global batch across the workers and keeps their weights identical.

``lib.models.training.fit_or_load`` builds and trains under the strategy; everything after training
(evaluation, Griffin-Lim, plots) runs locally on the saved model.
"""

from __future__ import annotations

import json
import os
from functools import cache

STRATEGIES = ("default", "mirrored", "multi-worker")
ENVIRONMENT_VARIABLE = "LML_DISTRIBUTION"


def strategy_name() -> str:
    """The chosen strategy's name, from ``LML_DISTRIBUTION`` (``default`` when unset)."""
    name = os.environ.get(ENVIRONMENT_VARIABLE, "").strip() or "default"
    if name not in STRATEGIES:
        raise ValueError(f"{ENVIRONMENT_VARIABLE}={name!r} is not one of {', '.join(STRATEGIES)}")
    return name


def _multi_worker_class():
    import tensorflow as tf

    class MultiWorkerStrategy(tf.distribute.MultiWorkerMirroredStrategy):
        """``MultiWorkerMirroredStrategy`` whose ``reduce`` accepts what Keras 3's ``fit`` passes it.

        Keras 3.15 reduces a nested batch (inputs, targets) in one call and reduces scalar
        losses along ``axis=0``; the collective strategy refuses both. Reducing each element,
        and scalars without an axis, gives the mean over workers that Keras means.
        """

        def reduce(self, reduce_op, value, axis):
            parent = super()

            def one(item):
                rank = self.experimental_local_results(item)[0].shape.rank
                return parent.reduce(reduce_op, item, None if rank == 0 else axis)

            return tf.nest.map_structure(one, value)

    return MultiWorkerStrategy


def make_strategy(name: str | None = None):
    """The ``tf.distribute.Strategy`` called ``name`` (default: :func:`strategy_name`); one per process.

    ``multi-worker`` needs ``TF_CONFIG`` naming the cluster and this worker's index, and must be
    created before the first TensorFlow operation runs.
    """
    return _strategy(name or strategy_name())


@cache
def _strategy(name: str):
    import tensorflow as tf

    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    config = os.environ.get("TF_CONFIG")
    if not config:
        raise ValueError(
            "multi-worker training needs TF_CONFIG, e.g. "
            '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}'
        )
    try:
        workers = json.loads(config)["cluster"]["worker"]
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"TF_CONFIG is not a cluster description with workers: {error}") from error
    if len(workers) < 1:
        raise ValueError("TF_CONFIG lists no workers")
    return _multi_worker_class()()


def shard_by_data(dataset):
    """``dataset`` with auto-sharding by element: each worker takes its part of every global batch."""
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def describe(strategy) -> dict:
    """Name, replicas in sync and worker count of a strategy, for logs and metrics."""
    workers = 1
    config = os.environ.get("TF_CONFIG")
    if type(strategy).__name__ == "MultiWorkerStrategy" and config:
        workers = len(json.loads(config)["cluster"]["worker"])
    return {"strategy": type(strategy).__name__, "replicas": int(strategy.num_replicas_in_sync), "workers": workers}
