"""fedzo's coordinator side: rounds, aggregation, replicas, evaluation, runs and reports.

It imports the shared core from `edge` (the algorithm's arithmetic, the
protocol, the policy) so that both sides compute the same bits.
"""
