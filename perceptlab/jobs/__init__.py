"""Distributed jobs: big generation and fine-tuning runs split into tasks on Dask distributed.

- :mod:`perceptlab.jobs.cluster` — where tasks run: in-process, a Dask ``LocalCluster``, or a running
  scheduler (``--scheduler tcp://host:8786``).
- :mod:`perceptlab.jobs.tasks` — the runner: submits tasks, retries failed ones, reports progress
  (done / running / failed / ETA) as records, cancels what is left when closed.
- :mod:`perceptlab.jobs.generate_job` — a generation job as a JSON description, sharded into batches
  whose seeds do not depend on the number of workers; results committed in a fixed order, idempotently.
- :mod:`perceptlab.jobs.align_job` — IndivNets of many participants as parallel tasks (GroupNet once).
- :mod:`perceptlab.jobs.threads` — torch's thread count per task (part of a job: it can change float bits).

Libraries are merged (and a job's results committed idempotently) by :mod:`perceptlab.data.library_merge`.
"""
