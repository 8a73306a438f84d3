// CUDAPrelude maps the kernel library's macros onto CUDA C++ for NVRTC. The
// compile options define T, ACC, IDXOUT and IS_F64.
#define KERNEL extern "C" __global__
#define GLOBAL
#define LOCAL_MEM __shared__
#define DEVFN static __device__ __forceinline__
#define I64 long long
#define GID0 ((I64)blockIdx.x * blockDim.x + threadIdx.x)
#define LID0 ((int)threadIdx.x)
#define LID1 ((int)threadIdx.y)
#define LSZ0 ((int)blockDim.x)
#define LSZ1 ((int)blockDim.y)
#define GRP0 ((I64)blockIdx.x)
#define GRP1 ((I64)blockIdx.y)
#define GRP2 ((I64)blockIdx.z)
#define BARRIER __syncthreads()
