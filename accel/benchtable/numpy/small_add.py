# Time per call of a + b on two 16-element float64 arrays (see small_add.star).
import sys, time
import numpy as np

def main():
    calls = int(sys.argv[1])
    heap = int(sys.argv[2])
    keep = [np.full(16, float(i)) for i in range(heap)]
    rng = np.random.default_rng(1)
    a = rng.random(16)
    b = rng.random(16)
    for _ in range(min(calls, 10000)):
        c = a + b
    t0 = time.perf_counter_ns()
    for _ in range(calls):
        c = a + b
    t1 = time.perf_counter_ns()
    print("ns_per_call %d" % ((t1 - t0) // calls))
    print("kept %d" % len(keep))

main()
