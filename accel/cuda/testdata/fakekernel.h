// fakekernel.h is what the fake NVRTC (fakenvrtc.c) compiles CUDA kernel
// sources against: it maps CUDA's built-ins onto host C++ so that the very
// source accel's CUDA backend hands to NVRTC runs on the CPU under the fake
// driver (fakecuda.c). Each thread of a block runs as a coroutine; the
// driver sets threadIdx/blockIdx before it resumes one, and __syncthreads()
// hands control back to the driver's scheduler, so __shared__ memory (static
// storage, one block at a time) and barriers behave as on a GPU.
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <type_traits>
#include <utility>

struct uint3 { unsigned x, y, z; };
struct dim3 { unsigned x, y, z; };

extern "C" {
// Set by the fake driver before it resumes a thread.
__attribute__((visibility("default"))) uint3 threadIdx, blockIdx;
__attribute__((visibility("default"))) dim3 blockDim, gridDim;
// The driver's barrier: suspends the calling thread until every thread of
// the block has reached it.
__attribute__((visibility("default"))) void (*__fake_barrier)(void);
// The SM architecture this "cubin" was compiled for (sm_XY as XY).
__attribute__((visibility("default"))) int __fake_arch = FAKE_ARCH;
}

#define __global__ __attribute__((used))
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
#define __restrict__
#define __syncthreads() __fake_barrier()

namespace fake {

// valid_fn reports whether p points into live
// device memory; the driver passes it in.
typedef int (*valid_fn)(const void *p);

template <class Fk_T> int check(const Fk_T &, valid_fn) { return 1; }
template <class Fk_T> int check(Fk_T *const &p, valid_fn valid) { return valid((const void *)p); }

// invoke calls kernel f with the parameters CUDA passes to cuLaunchKernel:
// params[i] points at the value of argument i. With run == 0 it only
// checks every pointer argument and returns the index of the first bad
// one, or -1.
template <class... Fk_A, size_t... Fk_I>
int invoke_(void (*f)(Fk_A...), void **params, valid_fn valid, int run, std::index_sequence<Fk_I...>) {
	if (!run) {
		int ok[] = {1, check(*(typename std::remove_reference<Fk_A>::type *)params[Fk_I], valid)...};
		for (size_t i = 1; i < sizeof(ok) / sizeof(ok[0]); i++)
			if (!ok[i]) return (int)(i - 1);
		return -1;
	}
	f(*(typename std::remove_reference<Fk_A>::type *)params[Fk_I]...);
	return -1;
}

template <class... Fk_A>
int invoke(void (*f)(Fk_A...), void **params, valid_fn valid, int run) {
	return invoke_(f, params, valid, run, std::index_sequence_for<Fk_A...>{});
}

} // namespace fake
