"""The paper's claims checked on constructed run summaries: each verdict follows the figures."""
import pytest

from fedzo.coordinator.analysis.claims import SMALL_SHARE_OF_FLOOR, claim_memory, claims_markdown, index_runs

MIB = 2**20


def summary(task, algo, k, learning_state, floor=62 * MIB, seed=0):
    """A run summary with what the claims read: K agents of one learning state and floor."""
    agent = {"learning_state_bytes": learning_state, "floor_rss_bytes": floor,
             "peak_rss_bytes": None if floor is None else floor + learning_state}
    return {"summary": {"task": task, "algo": algo, "agents": k, "seed": seed, "per_agent": [agent] * k}}


def memory_claim(*runs):
    idx = index_runs(runs, lambda run: (run["summary"]["task"], run["summary"]["algo"],
                                        run["summary"]["agents"]))
    return claim_memory(idx)


def verdict(markdown):
    (line,) = [line for line in markdown.splitlines() if line.startswith("Verdict:")]
    return line


def test_memory_claim_is_confirmed_when_par_holds_less_than_fedavg_and_little_next_to_the_floor():
    # The K = 5 figures of the paper run: theta, one block of scratch and the policy's
    # float copy, against a whole-vector scratch and an upload buffer.
    text = memory_claim(summary("hopper", "par-s2zpo", 5, 32788), summary("hopper", "fedavg-s2zpo", 5, 61476),
                        summary("hopper", "par-s2zpo", 1, 40984))      # K = 1 has no FedAvg to compare with
    assert verdict(text).startswith("Verdict: **confirmed** (1 of 1 comparisons")
    assert "| hopper | 5 | 32788 | 61476 | 1.9x | 0.05 % | yes |" in text
    assert "| hopper | par-s2zpo | 1 | 40984 | 62.0 | 62.0 |" in text


@pytest.mark.parametrize("par, fed, floor, why", [
    (61476, 32788, 62 * MIB, "Par-S2ZPO holds more than FedAvg-S2ZPO"),
    (40000, 40000, 62 * MIB, "a tie is not smaller"),
    (32788, 61476, int(32788 / (2 * SMALL_SHARE_OF_FLOOR)), "twice the share of the floor allowed"),
    (32788, 61476, None, "no floor was measured, so 'small' is not shown"),
])
def test_memory_claim_is_not_confirmed_when_the_figures_do_not_show_it(par, fed, floor, why):
    text = memory_claim(summary("hopper", "par-s2zpo", 5, par, floor), summary("hopper", "fedavg-s2zpo", 5, fed, floor))
    assert verdict(text).startswith("Verdict: **not confirmed** (0 of 1 comparisons"), why
    assert text.count("| no |") == 1


def test_memory_claim_is_partly_confirmed_when_some_comparisons_hold():
    text = memory_claim(summary("hopper", "par-s2zpo", 5, 32788), summary("hopper", "fedavg-s2zpo", 5, 61476),
                        summary("swimmer", "par-s2zpo", 5, 70000), summary("swimmer", "fedavg-s2zpo", 5, 58392))
    assert verdict(text).startswith("Verdict: **partly** (1 of 2 comparisons")


def test_memory_claim_without_fedavg_runs_is_not_checked():
    assert verdict(memory_claim(summary("hopper", "par-s2zpo", 5, 32788))).startswith(
        "Verdict: **not checked (no runs)** (0 of 0")


def test_claims_are_not_checked_on_an_ablation():
    """Two series of one task, algorithm and K (D = 1 and D = 4, say): no single series to compare."""
    runs = [dict(summary("hopper", "par-s2zpo", 5, 32788), series="D = 1"),
            dict(summary("hopper", "par-s2zpo", 5, 32788, seed=1), series="D = 4")]
    text = claims_markdown(runs, lambda run: run["series"])
    assert "Not checked here: several series share a task, algorithm and K" in text


def learning_run(task, algo, k, seed, gain, preference="panel"):
    """A run summary with what claims 1 and 2 read: returns from a common start."""
    return {"summary": {"task": task, "algo": algo, "agents": k, "seed": seed, "rounds": 100 // k,
                        "return_initial": 1000.0, "return_final": 1000.0 + gain, "preference": preference}}


def learning_claims(gains: dict) -> str:
    """claims_markdown's claims 1 and 2 for {(algo, K, preference): [gain per seed]}."""
    from fedzo.coordinator.analysis.claims import claim_matches_centralized, claim_par_beats_fedavg, null_index
    runs = [learning_run("hopper", algo, k, seed, g, pref)
            for (algo, k, pref), seeds in gains.items() for seed, g in enumerate(seeds)]
    idx = index_runs(runs, lambda run: (run["summary"]["algo"], run["summary"]["agents"],
                                        run["summary"]["preference"]))
    nulls = null_index(runs)
    return claim_par_beats_fedavg(idx, nulls), claim_matches_centralized(idx, nulls)


PAR, FED, CENTRAL = ("par-s2zpo", 5, "panel"), ("fedavg-s2zpo", 5, "panel"), ("par-s2zpo", 1, "panel")
PAR_NULL, FED_NULL = ("par-s2zpo", 5, "coin"), ("fedavg-s2zpo", 5, "coin")
NOISE = [3, -2, 4, -5, 1]


def test_par_beats_fedavg_only_when_it_also_beats_its_null():
    strong = {PAR: [400 + n for n in NOISE], FED: [100 + n for n in NOISE],
              PAR_NULL: [20 + n for n in NOISE], FED_NULL: [5 + n for n in NOISE],
              CENTRAL: [390 - n for n in NOISE]}
    claim1, claim2 = learning_claims(strong)
    assert verdict(claim1).startswith("Verdict: **confirmed**")
    assert verdict(claim2).startswith("Verdict: **confirmed**")       # 400 vs 390: within half of ~380
    # The same wins, but the null walks as far as the method: nothing was learned.
    walked = {**strong, PAR_NULL: [400 - n for n in NOISE]}
    claim1, claim2 = learning_claims(walked)
    assert verdict(claim1).startswith("Verdict: **not confirmed**") and "does not clearly beat its null" in claim1
    assert verdict(claim2).startswith("Verdict: **not confirmed**")
    # Without a null control nothing is confirmed either.
    no_null = {k: v for k, v in strong.items() if k[2] != "coin"}
    claim1, _ = learning_claims(no_null)
    assert "no: no null control" in claim1 and verdict(claim1).startswith("Verdict: **not confirmed**")


def test_a_measured_option_beside_the_paper_algorithm_is_left_out_of_the_claims():
    runs = [learning_run("hopper", "par-s2zpo", 5, seed, 400 + n) for seed, n in enumerate(NOISE)]
    runs += [learning_run("hopper", "fedavg-s2zpo", 5, seed, 100 + n) for seed, n in enumerate(NOISE)]
    runs += [learning_run("hopper", "par-s2zpo", 5, seed, 20 + n, "coin") for seed, n in enumerate(NOISE)]
    symmetric = [learning_run("hopper", "par-s2zpo", 5, seed, -900) for seed in range(5)]
    for run in symmetric:
        run["summary"]["comparison"] = "symmetric"
    from fedzo.coordinator.analysis.claims import claim_par_beats_fedavg, null_index
    idx = index_runs(runs + symmetric, lambda run: (run["summary"]["algo"], run["summary"].get("comparison")))
    assert idx is not None                              # not mistaken for an ablation
    claim1 = claim_par_beats_fedavg(idx, null_index(runs + symmetric))
    assert verdict(claim1).startswith("Verdict: **confirmed**")   # the symmetric runs' -900 did not enter


def test_matching_centralized_needs_an_interval_inside_the_margin():
    base = {PAR: [400 + n for n in NOISE], PAR_NULL: [n for n in NOISE], FED: [0] * 5}
    far = {**base, CENTRAL: [700 + 3 * n for n in NOISE]}
    assert "no: clearly worse" in learning_claims(far)[1]
    wide = {**base, CENTRAL: [400 + 150 * (-1) ** s for s in range(5)]}
    assert "undecided: interval wider than" in learning_claims(wide)[1]


def test_an_undecided_match_says_how_many_seeds_would_decide_it():
    from fedzo.coordinator.analysis.claims import seeds_to_decide
    from fedzo.coordinator.analysis.report import mean_ci
    # Student's t, 95 % two-sided, for 10..30 degrees of freedom (beyond: that of 30).
    t = dict(zip(range(10, 31), (2.228, 2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
                                 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)))
    values = [50 + 100 * z for z in (-1.5, -1, -0.5, 0, 0, 0, 0, 0.5, 1, 1.5)]   # ten seeds about 50
    mean, half = mean_ci(values)
    sd = half * 10 ** 0.5 / 2.262
    # The interval must shrink to within the margin 80: half-width below 80 - 50.
    need = next(n for n in range(11, 10_000) if t.get(n - 1, 2.042) * sd / n ** 0.5 < 80 - mean)
    assert 20 < need < 100
    assert seeds_to_decide(mean, half, 10, 80) == f"about {need} seeds would decide it at this mean and spread"
    assert "beyond the margin" in seeds_to_decide(90, 10, 10, 80)
    assert seeds_to_decide(79.9, 200, 10, 80).startswith("more than 10000 seeds")
    base = {PAR: [400 + n for n in NOISE], PAR_NULL: [n for n in NOISE], FED: [0] * 5}
    wide = {**base, CENTRAL: [400 + 150 * (-1) ** s for s in range(5)]}
    assert "seeds would decide it at this mean and spread" in learning_claims(wide)[1]
