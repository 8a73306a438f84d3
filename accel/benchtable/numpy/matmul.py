# Times of an n×n matrix product after one warm-up (see matmul.star).
import sys, time
import numpy as np

def main():
    n = int(sys.argv[1])
    dt = sys.argv[2]
    reps = int(sys.argv[3])
    rng = np.random.default_rng(1)
    a = rng.random((n, n)).astype(dt)
    b = rng.random((n, n)).astype(dt)
    c = a @ b
    times = []
    for _ in range(reps):
        t0 = time.perf_counter_ns()
        c = a @ b
        t1 = time.perf_counter_ns()
        times.append(t1 - t0)
    print("times_ns " + " ".join(str(t) for t in times))

main()
