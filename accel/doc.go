// Package accel provides dense float64 and float32 arrays, the kernels that
// threads compute with, and the Device abstraction with its CPU backend.
// It knows nothing of Starlark.
//
// # Arrays and the Exec
//
// An [Array] is an immutable-by-default, row-major N-d array with a shape
// and a [DType]. Arrays are made and combined by an [Exec], which holds the
// [Device] they live on and the [Budget] their storage is charged to:
//
//	budget, _ := accel.NewBudgetMB(500) // a thread's metadata.max_memory_mb
//	ex := accel.New(accel.Options{Budget: budget})
//	defer ex.Close()                    // the run is over: free its arrays
//	a, _ := ex.Rand(accel.Float64, 1, 512, 512)
//	b, _ := ex.Rand(accel.Float64, 2, 512, 512)
//	c, err := ex.Matmul(ctx, a, b) // ctx: the thread's TTL
//
// Element-wise operations broadcast as in NumPy; mixed dtypes compute in
// float64. Methods that read or write element data take a context and stop
// soon after it is cancelled. Slice, Index, Transpose and Reshape return
// views that share their operand's storage (an offset and strides, as in
// NumPy); Copy makes an independent array. The Into methods (BinaryInto,
// UnaryInto, ClipInto, MatmulInto, CopyInto) write into an existing array,
// which may be a view; SetReadOnly makes a storage refuse every write.
//
// The element-wise operations are one table (BinaryOps, UnaryOps) that
// drives the CPU kernels, the GPU device functions and the Starlark
// builtins; CONTRIBUTING.md says how to add one. WriteNPY and ReadNPY read
// and write NumPy's .npy files.
//
// # Errors
//
// Nothing panics on bad input. Every error has a complete message ("matmul:
// shapes (3,4) and (5,2) are not aligned: 4 != 5") and wraps one of the
// sentinels ([ErrShape], [ErrDType], [ErrIndex], [ErrArgument], [ErrBudget],
// [ErrFreed], [ErrClosed], [ErrDevice], [ErrReadOnly], [ErrFormat]) or the
// context's error.
//
// # Memory
//
// An allocation that would exceed the budget fails before any memory is
// taken ("zeros: array of shape (512,512) float64 exceeds memory budget:
// needs 2.00MB, allowed 1MB"). Bytes return to the budget on [Array.Free],
// on [Exec.Close], or when the collector finds an array unreachable, which
// the package learns from weak pointers, without a finalizer per array
// (arrays of at most 1 KiB are watched in batches). Host buffers of 256 KiB
// or more are recycled by size class once unreachable, so a loop of large
// temporaries reuses memory instead of growing the heap, and a recycled
// buffer is not cleared before a kernel overwrites it.
//
// # Devices
//
// [CPU] is always present; [Devices] lists every backend with whether it was
// found and why not, and [LookupDevice] finds one by name ("cpu", "gpu",
// "cuda", "opencl", "metal"). A GPU backend implements [Device] and
// registers with [RegisterBackend]; operations it does not implement run on
// the host with copies, so callers never change.
package accel
