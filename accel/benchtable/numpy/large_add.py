# Times of x + y on two large float64 arrays (see large_add.star).
import sys, time
import numpy as np

def main():
    n = int(sys.argv[1])
    reps = int(sys.argv[2])
    rng = np.random.default_rng(1)
    x = rng.random(n)
    y = rng.random(n)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter_ns()
        c = x + y
        t1 = time.perf_counter_ns()
        times.append(t1 - t0)
    print("times_ns " + " ".join(str(t) for t in times))

main()
