package cuda

import (
	"fmt"
	"math"
	"sort"

	"github.com/ebitengine/purego"

	"github.com/autonode/autonode/accel"
	"github.com/autonode/autonode/accel/internal/gpukern"
)

// blas holds cuBLAS's entry points (cublas_api.h, the v2 API) and a handle
// bound to the device's primary context.
type blas struct {
	path                string
	major, minor, patch int
	handle              uintptr

	create       func(h *uintptr) int32
	destroy      func(h uintptr) int32
	setStream    func(h uintptr, stream uintptr) int32
	property     func(typ int32, v *int32) int32
	statusString func(status int32) string // cuBLAS 11.4.2+; nil before

	sgemm        func(h uintptr, ta, tb, m, n, k int32, alpha *float32, a uint64, lda int32, b uint64, ldb int32, beta *float32, c uint64, ldc int32) int32
	dgemm        func(h uintptr, ta, tb, m, n, k int32, alpha *float64, a uint64, lda int32, b uint64, ldb int32, beta *float64, c uint64, ldc int32) int32
	sgemmStrided func(h uintptr, ta, tb, m, n, k int32, alpha *float32, a uint64, lda int32, sa int64, b uint64, ldb int32, sb int64, beta *float32, c uint64, ldc int32, sc int64, count int32) int32
	dgemmStrided func(h uintptr, ta, tb, m, n, k int32, alpha *float64, a uint64, lda int32, sa int64, b uint64, ldb int32, sb int64, beta *float64, c uint64, ldc int32, sc int64, count int32) int32
}

const cublasOpN = 0 // CUBLAS_OP_N

func (b *blas) String() string { return fmt.Sprintf("cuBLAS %d.%d.%d", b.major, b.minor, b.patch) }

func (b *blas) check(call string, status int32) error {
	if status == 0 {
		return nil
	}
	text := ""
	if b.statusString != nil {
		text = ": " + b.statusString(status)
	}
	return fmt.Errorf("cuda: %s: cuBLAS status %d%s", call, status, text)
}

// loadBLAS opens the cuBLAS libraries among paths and binds the newest
// whose major version is not above the driver's (a newer one fails to
// initialise on an older driver). The handle is created by the caller,
// with the context current.
func loadBLAS(paths []string, driverVersion int) (*blas, error) {
	libs, errs, missing := dlopenAllWith(paths, func(p string) { preloadSiblings(p, "libcublasLt.so") })
	var found []*blas
	for _, lib := range libs {
		b := &blas{path: lib.path}
		if err := bind(lib.handle, []symbol{
			{&b.create, "cublasCreate_v2"},
			{&b.destroy, "cublasDestroy_v2"},
			{&b.setStream, "cublasSetStream_v2"},
			{&b.property, "cublasGetProperty"},
			{&b.sgemm, "cublasSgemm_v2"},
			{&b.dgemm, "cublasDgemm_v2"},
			{&b.sgemmStrided, "cublasSgemmStridedBatched"},
			{&b.dgemmStrided, "cublasDgemmStridedBatched"},
		}); err != nil {
			errs = append(errs, lib.path+": "+err.Error())
			continue
		}
		bindOptional(lib.handle, []symbol{{&b.statusString, "cublasGetStatusString"}})
		var v [3]int32
		for i := range v {
			b.property(int32(i), &v[i]) // MAJOR_VERSION, MINOR_VERSION, PATCH_LEVEL
		}
		b.major, b.minor, b.patch = int(v[0]), int(v[1]), int(v[2])
		found = append(found, b)
	}
	if len(found) == 0 {
		return nil, fmt.Errorf("cuBLAS not found: %s", notFound(errs, missing))
	}
	sort.SliceStable(found, func(i, j int) bool { return found[i].major > found[j].major })
	for _, b := range found {
		if b.major <= driverVersion/1000 {
			return b, nil
		}
	}
	return found[len(found)-1], nil
}

// dlopenAllWith is dlopenAll with a hook run before each path is opened.
func dlopenAllWith(paths []string, before func(string)) (libs []opened, errs, missing []string) {
	seen := map[uintptr]bool{}
	for _, p := range paths {
		before(p)
		l, e, m := dlopenAll([]string{p}, purego.RTLD_NOW|purego.RTLD_LOCAL)
		errs, missing = append(errs, e...), append(missing, m...)
		for _, lib := range l {
			if !seen[lib.handle] {
				seen[lib.handle] = true
				libs = append(libs, lib)
			}
		}
	}
	return libs, errs, missing
}

// Gemm runs a row-major product with cuBLAS, which is column-major: the
// row-major C = A·B is the column-major Cᵀ = Bᵀ·Aᵀ, and a row-major matrix
// read column-major is its transpose, so B is passed first and nothing is
// transposed or copied. Batches whose strides line up go in one strided
// batched call. Products cuBLAS cannot take (a dimension past 2^31-1) go
// to the kernel.
func (l launcher) Gemm(dt accel.DType, g *gpukern.Gemm) (bool, error) {
	b := l.d.blas
	if b == nil || g.M > math.MaxInt32 || g.N > math.MaxInt32 || g.K > math.MaxInt32 || g.Batches() > math.MaxInt32 {
		return false, nil
	}
	es := uint64(dt.Size())
	c, a, bm := uint64(g.C.(devPtr)), uint64(g.A.(devPtr)), uint64(g.B.(devPtr))
	m, n, k := int32(g.M), int32(g.N), int32(g.K)
	err := g.Strided(func(aOff, bOff, cOff int64, count int, sa, sb, sc int64) error {
		pa, pb, pc := a+uint64(aOff)*es, bm+uint64(bOff)*es, c+uint64(cOff)*es
		l.d.launches.Add(1)
		if dt == accel.Float32 {
			one, zero := float32(1), float32(0)
			if count == 1 {
				return b.check("cublasSgemm_v2", b.sgemm(b.handle, cublasOpN, cublasOpN, n, m, k, &one, pb, n, pa, k, &zero, pc, n))
			}
			return b.check("cublasSgemmStridedBatched", b.sgemmStrided(b.handle, cublasOpN, cublasOpN, n, m, k, &one, pb, n, sb, pa, k, sa, &zero, pc, n, sc, int32(count)))
		}
		one, zero := 1.0, 0.0
		if count == 1 {
			return b.check("cublasDgemm_v2", b.dgemm(b.handle, cublasOpN, cublasOpN, n, m, k, &one, pb, n, pa, k, &zero, pc, n))
		}
		return b.check("cublasDgemmStridedBatched", b.dgemmStrided(b.handle, cublasOpN, cublasOpN, n, m, k, &one, pb, n, sb, pa, k, sa, &zero, pc, n, sc, int32(count)))
	})
	return true, err
}
