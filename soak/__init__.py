"""The soak harness: the whole system under load while its processes are killed.

``python -m soak --profile short|long`` (``make soak`` / ``make soak-long``) starts a throwaway
PostgreSQL cluster, two wallet server processes sharing one listening socket, two wallet
workers and a game side, drives all three protocols with the simulator (duplicates, timeouts,
dropped answers, reordered rollbacks) and a durability prober, while it ``kill -9``s servers
and workers at random moments and crash-restarts PostgreSQL once. Then it drains the workers
and checks that nothing was lost (see :mod:`soak.checks` and docs/reliability.md). Everything
runs on 127.0.0.1, every phase has a deadline, and it always cleans up after itself.
"""
