// OpenCLPrelude maps the kernel library's macros onto OpenCL C 1.2. The
// build options define T, ACC, IDXOUT, IS_F64 and, when the device has
// cl_khr_fp64, HAVE_FP64.
#ifdef HAVE_FP64
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
#endif
#define KERNEL __kernel
#define GLOBAL __global
#define LOCAL_MEM __local
#define DEVFN static inline
#define I64 long
#define GID0 ((I64)get_global_id(0))
#define LID0 ((int)get_local_id(0))
#define LID1 ((int)get_local_id(1))
#define LSZ0 ((int)get_local_size(0))
#define LSZ1 ((int)get_local_size(1))
#define GRP0 ((I64)get_group_id(0))
#define GRP1 ((I64)get_group_id(1))
#define GRP2 ((I64)get_group_id(2))
#define BARRIER barrier(CLK_LOCAL_MEM_FENCE)
