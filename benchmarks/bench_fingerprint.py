"""How long fingerprinting takes, against plain forward+backward passes in the same run.

Times tafa.fingerprint(n=128) on the digits MLP (cold: first call, tracing included;
warm: repeated) and, as the reference, forward+backward passes of the same model:
one batched pass over 128 inputs, and 128 single-input passes; and fingerprinting with
a public base model (base=, 4x candidates) against without. Prints ratios, which
survive a noisy shared machine better than seconds, and writes JSON.

    python benchmarks/bench_fingerprint.py [--repeats 5] [--json benchmarks/results/fingerprint_speed.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's tafa_tf, not an installed one


def _time(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--n", type=int, default=128)
    parser.add_argument("--json", default="benchmarks/results/fingerprint_speed.json")
    args = parser.parse_args(argv)

    import numpy as np
    import tensorflow as tf

    import tafa_tf as tafa
    from tafa_tf import zoo

    model = zoo.train("digits_mlp", seed=0, epochs=20)
    domain = tafa.domains.Box(0.0, 1.0)
    x = domain.sample(np.random.default_rng(0), (args.n, 64))

    @tf.function
    def fwd_bwd(batch):
        with tf.GradientTape() as tape:
            tape.watch(batch)
            y = tf.reduce_sum(model(batch, training=False))
        return tape.gradient(y, batch)

    batched = tf.constant(x)
    singles = [tf.constant(x[i : i + 1]) for i in range(args.n)]
    fwd_bwd(batched)
    fwd_bwd(singles[0])  # trace both shapes before timing

    t0 = time.perf_counter()
    tafa.fingerprint(model, task="classification", n=args.n, domain=domain, seed=0)
    cold = time.perf_counter() - t0
    warm = _time(lambda: tafa.fingerprint(model, task="classification", n=args.n, domain=domain, seed=1), args.repeats)
    base = zoo.train("digits_mlp", seed=1, epochs=20)  # stands in for a public base: same shapes
    tafa.fingerprint(model, task="classification", n=args.n, domain=domain, seed=0, base=base)  # trace
    with_base = _time(lambda: tafa.fingerprint(model, task="classification", n=args.n, domain=domain, seed=1, base=base),
                      args.repeats)
    one_batch = _time(lambda: fwd_bwd(batched).numpy(), max(args.repeats, 20))
    n_singles = _time(lambda: [fwd_bwd(s) for s in singles][-1].numpy(), args.repeats)

    fp_s = statistics.median(warm)
    res = {
        "points": args.n,
        "fingerprint_cold_s": cold,
        "fingerprint_warm_s": fp_s,
        "batched_fwd_bwd_s": statistics.median(one_batch),
        "single_fwd_bwd_x_n_s": statistics.median(n_singles),
        "ratio_vs_one_batched_pass": fp_s / statistics.median(one_batch),
        "ratio_vs_n_single_passes": fp_s / statistics.median(n_singles),
        "fingerprint_with_base_warm_s": statistics.median(with_base),
        "ratio_with_base_vs_without": statistics.median(with_base) / fp_s,
        "repeats": args.repeats,
        "cpu_count": os.cpu_count(),
    }
    print(f"fingerprint, {args.n} points of the digits MLP: {fp_s:.3f} s warm (cold {cold:.3f} s)")
    print(f"one batched forward+backward over {args.n} inputs: {res['batched_fwd_bwd_s'] * 1e3:.2f} ms "
          f"-> ratio {res['ratio_vs_one_batched_pass']:.0f}x")
    print(f"{args.n} single-input forward+backward passes: {res['single_fwd_bwd_x_n_s']:.3f} s "
          f"-> ratio {res['ratio_vs_n_single_passes']:.2f}x")
    print(f"with a public base (4x candidates): {res['fingerprint_with_base_warm_s']:.3f} s "
          f"-> ratio {res['ratio_with_base_vs_without']:.2f}x the time without")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(json.dumps(res, indent=2))
    os.replace(tmp, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
