package kern

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
)

// gemmImpl describes one micro-kernel and the blocking around it.
//
// micro computes an mr×nr tile: C = Ap·Bp (acc false) or C += Ap·Bp (acc
// true), where Ap is a packed mr×kc panel of A stored column by column
// (Ap[p*mr+i] = A[i][p]) and Bp a packed kc×nr panel of B stored row by
// row (Bp[p*nr+j] = B[p][j]); c holds at least (mr-1)*ldc+nr elements.
type gemmImpl[T float] struct {
	mr, nr     int
	kc, mc, nc int
	micro      func(kc int, a, b, c []T, ldc int, acc bool)

	// Streaming kernels of the same level for the matrix-vector shapes
	// (n == 1 or m == 1), which gain nothing from packing.
	dot  func(x, y []T) float64
	axpy func(alpha T, x, y []T)
	scal func(op int, dst, x []T, s T)
}

var (
	gemm64 [3]gemmImpl[float64]
	gemm32 [3]gemmImpl[float32]
)

// gemmParMin is the m·n·k below which gemm runs single-threaded inline.
const gemmParMin = 48 * 48 * 48

// setupGemm installs the portable gemm and fills levels the architecture
// init left empty.
func setupGemm() {
	gemm64[levelGeneric] = gemmImpl[float64]{mr: 4, nr: 4, kc: 256, mc: 128, nc: 2048, micro: microGo4x4[float64]}
	gemm32[levelGeneric] = gemmImpl[float32]{mr: 4, nr: 4, kc: 256, mc: 128, nc: 2048, micro: microGo4x4[float32]}
	for l := range gemm64 {
		if gemm64[l].micro == nil {
			gemm64[l] = gemm64[levelGeneric]
		}
		if gemm32[l].micro == nil {
			gemm32[l] = gemm32[levelGeneric]
		}
		gemm64[l].dot, gemm64[l].axpy, gemm64[l].scal = tab64[l].dot, tab64[l].axpy, tab64[l].scal
		gemm32[l].dot, gemm32[l].axpy, gemm32[l].scal = tab32[l].dot, tab32[l].axpy, tab32[l].scal
	}
}

// GemmF64 computes C = A·B for row-major matrices: A is m×k with leading
// dimension lda, B is k×n with ldb, C is m×n with ldc. C's m×n window is
// overwritten (its previous contents, NaN included, are ignored); elements
// beyond column n of each row are not touched. It checks the dimensions and
// slice lengths and returns an error instead of panicking. If ctx is
// cancelled it stops between blocks and returns ctx.Err(), leaving C
// partially written. It uses up to runtime.GOMAXPROCS cores; every element
// of C is computed by the same sequence of operations whatever the number
// of cores, so results are reproducible. C must not overlap A or B.
func GemmF64(ctx context.Context, m, n, k int, a []float64, lda int, b []float64, ldb int, c []float64, ldc int) error {
	if err := checkGemm("GemmF64", m, n, k, len(a), lda, len(b), ldb, len(c), ldc); err != nil {
		return err
	}
	return gemm(ctx, &gemm64[level()], m, n, k, a, lda, b, ldb, c, ldc)
}

// GemmF32 computes C = A·B in float32; see GemmF64.
func GemmF32(ctx context.Context, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) error {
	if err := checkGemm("GemmF32", m, n, k, len(a), lda, len(b), ldb, len(c), ldc); err != nil {
		return err
	}
	return gemm(ctx, &gemm32[level()], m, n, k, a, lda, b, ldb, c, ldc)
}

// needLen is the minimum length of a rows×cols row-major matrix with
// leading dimension ld, or -1 if it overflows.
func needLen(rows, cols, ld int) int {
	if rows == 0 || cols == 0 {
		return 0
	}
	if rows-1 > (math.MaxInt-cols)/ld {
		return -1
	}
	return (rows-1)*ld + cols
}

func checkGemm(name string, m, n, k, la, lda, lb, ldb, lc, ldc int) error {
	if m < 0 || n < 0 || k < 0 {
		return fmt.Errorf("kern.%s: negative dimension (m=%d, n=%d, k=%d)", name, m, n, k)
	}
	if lda < max(1, k) {
		return fmt.Errorf("kern.%s: lda=%d is less than k=%d", name, lda, k)
	}
	if ldb < max(1, n) {
		return fmt.Errorf("kern.%s: ldb=%d is less than n=%d", name, ldb, n)
	}
	if ldc < max(1, n) {
		return fmt.Errorf("kern.%s: ldc=%d is less than n=%d", name, ldc, n)
	}
	for _, s := range [...]struct {
		what              string
		rows, cols, ld, l int
	}{{"A", m, k, lda, la}, {"B", k, n, ldb, lb}, {"C", m, n, ldc, lc}} {
		need := needLen(s.rows, s.cols, s.ld)
		if need < 0 {
			return fmt.Errorf("kern.%s: %s is too large (%d×%d, leading dimension %d)", name, s.what, s.rows, s.cols, s.ld)
		}
		if s.l < need {
			return fmt.Errorf("kern.%s: %s has %d elements, need at least %d for %d×%d with leading dimension %d",
				name, s.what, s.l, need, s.rows, s.cols, s.ld)
		}
	}
	return nil
}

// bufPool64 and bufPool32 recycle packing buffers between calls.
var bufPool64, bufPool32 sync.Pool

func getBuf[T float](n int) *[]T {
	var p *sync.Pool
	var zero T
	switch any(zero).(type) {
	case float64:
		p = &bufPool64
	default:
		p = &bufPool32
	}
	if v, ok := p.Get().(*[]T); ok && cap(*v) >= n {
		*v = (*v)[:n]
		return v
	}
	s := make([]T, n)
	return &s
}

func putBuf[T float](b *[]T) {
	var zero T
	switch any(zero).(type) {
	case float64:
		bufPool64.Put(b)
	default:
		bufPool32.Put(b)
	}
}

// balance splits total into ceil(total/limit) near-equal blocks, each
// rounded up to a multiple of unit, and returns the block size.
func balance(total, limit, unit int) int {
	if total <= limit {
		return (total + unit - 1) / unit * unit
	}
	nb := (total + limit - 1) / limit
	bs := (total + nb - 1) / nb
	return (bs + unit - 1) / unit * unit
}

// gemmRowsMax bounds the rows of A packed at once (the packed block is
// gemmRowsMax×kc elements).
const gemmRowsMax = 2048

func gemm[T float](ctx context.Context, g *gemmImpl[T], m, n, k int, a []T, lda int, b []T, ldb int, c []T, ldc int) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if m == 0 || n == 0 {
		return nil
	}
	if k == 0 {
		for i := 0; i < m; i++ {
			clear(c[i*ldc : i*ldc+n])
		}
		return nil
	}
	nw := numWorkers()
	if float64(m)*float64(n)*float64(k) < gemmParMin {
		nw = 1
	}
	if n == 1 {
		return gemv(ctx, g, nw, m, k, a, lda, b, ldb, c, ldc)
	}
	if m == 1 {
		return gevm(ctx, g, nw, n, k, a, b, ldb, c)
	}
	mr, nr := g.mr, g.nr
	kc := balance(k, g.kc, 1)
	nc := balance(n, g.nc, nr)
	mb := balance(m, gemmRowsMax, mr) // rows packed per pass

	// Packed A for mb rows, packed B for nc columns, and one edge tile per
	// worker.
	asz, bsz := mb*kc, nc*kc
	buf := getBuf[T](asz + bsz + nw*mr*nr)
	defer putBuf(buf)
	ap := (*buf)[:asz]
	bp := (*buf)[asz : asz+bsz]
	tmps := (*buf)[asz+bsz:]

	done := ctx.Done()
	var cancelled atomic.Bool
	for jc := 0; jc < n; jc += nc {
		nb := min(nc, n-jc)
		panels := (nb + nr - 1) / nr
		for pc := 0; pc < k; pc += kc {
			kb := min(kc, k-pc)
			acc := pc > 0
			for ic := 0; ic < m; ic += mb {
				if done != nil {
					select {
					case <-done:
						return ctx.Err()
					default:
					}
				}
				rows := min(mb, m-ic)
				mTiles := (rows + mr - 1) / mr
				// Pack the A rows (and, on the first row pass, B) in
				// parallel: items [0, mTiles) are A tiles, the rest B panels.
				items := mTiles
				if ic == 0 {
					items += panels
				}
				parallelFor(nw, items, max(1, items/(4*nw)), func(_, lo, hi int) {
					for t := lo; t < hi; t++ {
						if done != nil && t%8 == 0 && stop(done, &cancelled) {
							return
						}
						if t < mTiles {
							i := ic + t*mr
							packA(ap[t*mr*kb:(t+1)*mr*kb], a[i*lda+pc:], lda, kb, min(mr, m-i), mr)
						} else {
							p := t - mTiles
							j := jc + p*nr
							packB(bp[p*nr*kb:(p+1)*nr*kb], b[pc*ldb+j:], ldb, kb, min(nr, n-j), nr)
						}
					}
				})
				if cancelled.Load() {
					return ctx.Err()
				}
				// Compute in blocks of tpt row tiles × ppt column panels,
				// enough of them for dynamic load balancing.
				tpt := max(1, g.mc/mr)
				rBlocks := (mTiles + tpt - 1) / tpt
				tpt = (mTiles + rBlocks - 1) / rBlocks
				cBlocks := min(panels, max(1, (6*nw+rBlocks-1)/rBlocks))
				if nw == 1 {
					cBlocks = 1
				}
				ppt := (panels + cBlocks - 1) / cBlocks
				cBlocks = (panels + ppt - 1) / ppt
				parallelFor(nw, rBlocks*cBlocks, 1, func(w, lo, hi int) {
					tmp := tmps[w*mr*nr : (w+1)*mr*nr]
					for t := lo; t < hi; t++ {
						rb, cb := t/cBlocks, t%cBlocks
						r0, r1 := rb*tpt, min(mTiles, (rb+1)*tpt)
						p0, p1 := cb*ppt, min(panels, (cb+1)*ppt)
						for p := p0; p < p1; p++ {
							if done != nil && stop(done, &cancelled) {
								return
							}
							j := jc + p*nr
							nv := min(nr, n-j)
							bpp := bp[p*nr*kb : (p+1)*nr*kb]
							for r := r0; r < r1; r++ {
								i := ic + r*mr
								mv := min(mr, m-i)
								app := ap[r*mr*kb : (r+1)*mr*kb]
								if mv == mr && nv == nr {
									g.micro(kb, app, bpp, c[i*ldc+j:], ldc, acc)
									continue
								}
								g.micro(kb, app, bpp, tmp, nr, false)
								for ii := 0; ii < mv; ii++ {
									dst := c[(i+ii)*ldc+j : (i+ii)*ldc+j+nv]
									src := tmp[ii*nr : ii*nr+nv]
									if acc {
										for jj := range dst {
											dst[jj] += src[jj]
										}
									} else {
										copy(dst, src)
									}
								}
							}
						}
					}
				})
				if cancelled.Load() {
					return ctx.Err()
				}
			}
		}
	}
	return nil
}

// gemv computes the single column of C (n == 1): one dot product per row
// of A with the gathered column of B.
func gemv[T float](ctx context.Context, g *gemmImpl[T], nw, m, k int, a []T, lda int, b []T, ldb int, c []T, ldc int) error {
	bbuf := getBuf[T](k)
	defer putBuf(bbuf)
	bcol := *bbuf
	for p := range bcol {
		bcol[p] = b[p*ldb]
	}
	done := ctx.Done()
	var cancelled atomic.Bool
	parallelFor(nw, m, max(1, (1<<16)/k), func(_, lo, hi int) {
		if done != nil && stop(done, &cancelled) {
			return
		}
		for i := lo; i < hi; i++ {
			c[i*ldc] = T(g.dot(a[i*lda:i*lda+k], bcol))
		}
	})
	if cancelled.Load() {
		return ctx.Err()
	}
	return nil
}

// gevmCols is the width of the column slabs of C that gevm keeps in
// cache while it streams down B.
const gevmCols = 2048

// gevm computes the single row of C (m == 1) as a sum of scaled rows of B,
// by column slabs so that the slab of C stays in cache.
func gevm[T float](ctx context.Context, g *gemmImpl[T], nw, n, k int, a, b []T, ldb int, c []T) error {
	done := ctx.Done()
	var cancelled atomic.Bool
	parallelFor(nw, n, gevmCols, func(_, lo, hi int) {
		cc := c[lo:hi]
		g.scal(opMulScalar, cc, b[lo:hi], a[0])
		for p := 1; p < k; p++ {
			if done != nil && p%64 == 0 && stop(done, &cancelled) {
				return
			}
			g.axpy(a[p], b[p*ldb+lo:p*ldb+hi], cc)
		}
	})
	if cancelled.Load() {
		return ctx.Err()
	}
	return nil
}

// packA packs rows (≤ mr) rows and kb columns of A (starting at a[0],
// leading dimension lda) into dst as an mr×kb column-major panel,
// zero-padding missing rows.
func packA[T float](dst, a []T, lda, kb, rows, mr int) {
	dst = dst[:kb*mr]
	i := 0
	// Four rows at a time, so that each packed group of four is written
	// contiguously while four source rows stream in.
	for ; i+4 <= rows; i += 4 {
		r0 := a[i*lda : i*lda+kb]
		r1 := a[(i+1)*lda : (i+1)*lda+kb]
		r2 := a[(i+2)*lda : (i+2)*lda+kb]
		r3 := a[(i+3)*lda : (i+3)*lda+kb]
		for p := range r0 {
			d := dst[p*mr+i : p*mr+i+4 : p*mr+i+4]
			d[0], d[1], d[2], d[3] = r0[p], r1[p], r2[p], r3[p]
		}
	}
	for ; i < rows; i++ {
		src := a[i*lda : i*lda+kb]
		for p, v := range src {
			dst[p*mr+i] = v
		}
	}
	for i := rows; i < mr; i++ {
		for p := 0; p < kb; p++ {
			dst[p*mr+i] = 0
		}
	}
}

// packB packs kb rows and cols (≤ nr) columns of B (starting at b[0],
// leading dimension ldb) into dst as a kb×nr row-major panel, zero-padding
// missing columns.
func packB[T float](dst, b []T, ldb, kb, cols, nr int) {
	dst = dst[:kb*nr]
	if cols == nr {
		// Fixed-size array copies compile to straight-line vector moves,
		// much cheaper than a memmove call per short row.
		switch nr {
		case 8:
			for p := 0; p < kb; p++ {
				*(*[8]T)(dst[p*8:]) = *(*[8]T)(b[p*ldb:])
			}
		case 16:
			for p := 0; p < kb; p++ {
				*(*[16]T)(dst[p*16:]) = *(*[16]T)(b[p*ldb:])
			}
		case 32:
			for p := 0; p < kb; p++ {
				*(*[32]T)(dst[p*32:]) = *(*[32]T)(b[p*ldb:])
			}
		default:
			for p := 0; p < kb; p++ {
				copy(dst[p*nr:p*nr+nr], b[p*ldb:p*ldb+nr])
			}
		}
		return
	}
	for p := 0; p < kb; p++ {
		d := dst[p*nr : p*nr+nr]
		copy(d, b[p*ldb:p*ldb+cols])
		clear(d[cols:])
	}
}

// microGo4x4 is the portable 4×4 micro-kernel: 16 scalar accumulators,
// which fit the register files of arm64 (32 FP registers) and amd64.
func microGo4x4[T float](kc int, a, b, c []T, ldc int, acc bool) {
	var c00, c01, c02, c03, c10, c11, c12, c13 T
	var c20, c21, c22, c23, c30, c31, c32, c33 T
	a = a[:kc*4]
	b = b[:kc*4]
	for p := 0; p+4 <= len(a); p += 4 {
		av := a[p : p+4 : p+4]
		bv := b[p : p+4 : p+4]
		a0, a1, a2, a3 := av[0], av[1], av[2], av[3]
		b0, b1, b2, b3 := bv[0], bv[1], bv[2], bv[3]
		c00 += a0 * b0
		c01 += a0 * b1
		c02 += a0 * b2
		c03 += a0 * b3
		c10 += a1 * b0
		c11 += a1 * b1
		c12 += a1 * b2
		c13 += a1 * b3
		c20 += a2 * b0
		c21 += a2 * b1
		c22 += a2 * b2
		c23 += a2 * b3
		c30 += a3 * b0
		c31 += a3 * b1
		c32 += a3 * b2
		c33 += a3 * b3
	}
	r0 := c[0:4:4]
	r1 := c[ldc : ldc+4 : ldc+4]
	r2 := c[2*ldc : 2*ldc+4 : 2*ldc+4]
	r3 := c[3*ldc : 3*ldc+4 : 3*ldc+4]
	if acc {
		r0[0], r0[1], r0[2], r0[3] = r0[0]+c00, r0[1]+c01, r0[2]+c02, r0[3]+c03
		r1[0], r1[1], r1[2], r1[3] = r1[0]+c10, r1[1]+c11, r1[2]+c12, r1[3]+c13
		r2[0], r2[1], r2[2], r2[3] = r2[0]+c20, r2[1]+c21, r2[2]+c22, r2[3]+c23
		r3[0], r3[1], r3[2], r3[3] = r3[0]+c30, r3[1]+c31, r3[2]+c32, r3[3]+c33
		return
	}
	r0[0], r0[1], r0[2], r0[3] = c00, c01, c02, c03
	r1[0], r1[1], r1[2], r1[3] = c10, c11, c12, c13
	r2[0], r2[1], r2[2], r2[3] = c20, c21, c22, c23
	r3[0], r3[1], r3[2], r3[3] = c30, c31, c32, c33
}

// stop reports whether done is closed, recording it in cancelled: a
// worker of a cancelled product returns early and the product reports
// ctx.Err().
func stop(done <-chan struct{}, cancelled *atomic.Bool) bool {
	select {
	case <-done:
		cancelled.Store(true)
		return true
	default:
		return false
	}
}
