// Command asmgen writes the amd64 assembly kernels of package kern
// (gemm_amd64.s, stream_amd64.s) and their Go declarations
// (decl_amd64.go). It is a plain text generator with no dependencies; run
// it with "go generate" in package kern.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"go/format"
	"log"
	"os"
	"path/filepath"
	"strings"
)

// isa describes one vector instruction set.
type isa struct {
	name   string // "AVX512" or "AVX2"
	reg    string // "Z" or "Y"
	vbytes int    // vector width in bytes
	nregs  int    // vector registers available
	zero   string // instruction that zeroes a vector register
}

var (
	avx512 = isa{"AVX512", "Z", 64, 32, "VPXORQ"}
	avx2   = isa{"AVX2", "Y", 32, 16, "VXORPD"}
)

// dtype describes one element type.
type dtype struct {
	name  string // "F64" or "F32"
	gotyp string
	size  int
	sfx   string // "PD" or "PS"
	bcast string
}

var (
	f64 = dtype{"F64", "float64", 8, "PD", "VBROADCASTSD"}
	f32 = dtype{"F32", "float32", 4, "PS", "VBROADCASTSS"}
)

type gen struct {
	s    bytes.Buffer // assembly
	decl bytes.Buffer // Go declarations
}

func (g *gen) p(format string, args ...any) {
	fmt.Fprintf(&g.s, format, args...)
	g.s.WriteByte('\n')
}

func (g *gen) ins(format string, args ...any) {
	g.s.WriteByte('\t')
	g.p(format, args...)
}

func (g *gen) declare(doc, sig string) {
	fmt.Fprintf(&g.decl, "// %s\n//\n//go:noescape\nfunc %s\n\n", doc, sig)
}

func (i isa) r(n int) string { return fmt.Sprintf("%s%d", i.reg, n) }

func log2(n int) int {
	l := 0
	for 1<<l < n {
		l++
	}
	return l
}

// gemmKernel writes an mr×(nvec·lanes) register-blocked micro-kernel:
// C (+)= Ap·Bp with packed panels as described in gemm.go.
func (g *gen) gemmKernel(in isa, dt dtype, mr, nvec, unroll int) string {
	return g.gemmKernelX(in, dt, mr, nvec, unroll, false, "")
}

func (g *gen) gemmKernelX(in isa, dt dtype, mr, nvec, unroll int, embed bool, suffix string) string {
	lanes := in.vbytes / dt.size
	nr := nvec * lanes
	name := fmt.Sprintf("gemm%s%s_%dx%d%s", in.name, dt.name, mr, nr, suffix)
	nacc := mr * nvec
	nbc := in.nregs - nacc - nvec // broadcast registers
	if nbc < 1 {
		log.Fatalf("%s: not enough registers", name)
	}
	nbc = min(nbc, 4)
	acc := func(r, v int) string { return in.r(r*nvec + v) }
	breg := func(v int) string { return in.r(nacc + v) }
	treg := func(r int) string { return in.r(nacc + nvec + r%nbc) }
	g.declare(fmt.Sprintf("%s computes a %d×%d tile of C (+)= A·B from packed panels with %s FMA.", name, mr, nr, in.name),
		fmt.Sprintf("%s(kc int, a, b, c *%s, ldc int, acc bool)", name, dt.gotyp))
	g.p("// func %s(kc int, a, b, c *%s, ldc int, acc bool)", name, dt.gotyp)
	g.p("TEXT ·%s(SB), NOSPLIT, $0-41", name)
	g.ins("MOVQ kc+0(FP), CX")
	g.ins("MOVQ a+8(FP), AX")
	g.ins("MOVQ b+16(FP), BX")
	g.ins("MOVQ c+24(FP), DI")
	g.ins("MOVQ ldc+32(FP), DX")
	g.ins("SHLQ $%d, DX", log2(dt.size))
	// Prefetch the C tile, which is only needed after the k loop.
	g.ins("MOVQ DI, R8")
	for r := 0; r < mr; r++ {
		for off := 0; off < nr*dt.size; off += 64 {
			g.ins("PREFETCHT0 %d(R8)", off)
		}
		if (nr*dt.size)%64 != 0 {
			g.ins("PREFETCHT0 %d(R8)", nr*dt.size-1)
		}
		if r < mr-1 {
			g.ins("ADDQ DX, R8")
		}
	}
	for i := 0; i < nacc; i++ {
		g.ins("%s %s, %s, %s", in.zero, in.r(i), in.r(i), in.r(i))
	}
	step := func(u int) {
		aoff := u * mr * dt.size
		boff := u * nr * dt.size
		for v := 0; v < nvec; v++ {
			g.ins("VMOVUP%s %d(BX), %s", dt.sfx[1:], boff+v*in.vbytes, breg(v))
		}
		for r := 0; r < mr; r++ {
			if embed {
				for v := 0; v < nvec; v++ {
					g.ins("VFMADD231%s.BCST %d(AX), %s, %s", dt.sfx, aoff+r*dt.size, breg(v), acc(r, v))
				}
				continue
			}
			g.ins("%s %d(AX), %s", dt.bcast, aoff+r*dt.size, treg(r))
			for v := 0; v < nvec; v++ {
				g.ins("VFMADD231%s %s, %s, %s", dt.sfx, breg(v), treg(r), acc(r, v))
			}
		}
	}
	if unroll > 1 {
		g.p("unrolled_%s:", name)
		g.ins("CMPQ CX, $%d", unroll)
		g.ins("JLT single_%s", name)
		for u := 0; u < unroll; u++ {
			step(u)
		}
		g.ins("ADDQ $%d, AX", unroll*mr*dt.size)
		g.ins("ADDQ $%d, BX", unroll*nr*dt.size)
		g.ins("SUBQ $%d, CX", unroll)
		g.ins("JMP unrolled_%s", name)
	}
	g.p("single_%s:", name)
	g.ins("TESTQ CX, CX")
	g.ins("JEQ store_%s", name)
	step(0)
	g.ins("ADDQ $%d, AX", mr*dt.size)
	g.ins("ADDQ $%d, BX", nr*dt.size)
	g.ins("DECQ CX")
	g.ins("JMP single_%s", name)
	g.p("store_%s:", name)
	g.ins("CMPB acc+40(FP), $0")
	g.ins("JEQ overwrite_%s", name)
	for r := 0; r < mr; r++ {
		for v := 0; v < nvec; v++ {
			g.ins("VADD%s %d(DI), %s, %s", dt.sfx, v*in.vbytes, acc(r, v), acc(r, v))
			g.ins("VMOVUP%s %s, %d(DI)", dt.sfx[1:], acc(r, v), v*in.vbytes)
		}
		if r < mr-1 {
			g.ins("ADDQ DX, DI")
		}
	}
	g.ins("VZEROUPPER")
	g.ins("RET")
	g.p("overwrite_%s:", name)
	for r := 0; r < mr; r++ {
		for v := 0; v < nvec; v++ {
			g.ins("VMOVUP%s %s, %d(DI)", dt.sfx[1:], acc(r, v), v*in.vbytes)
		}
		if r < mr-1 {
			g.ins("ADDQ DX, DI")
		}
	}
	g.ins("VZEROUPPER")
	g.ins("RET")
	g.p("")
	return name
}

const streamVecs = 4 // vectors per loop iteration in streaming kernels

// streamLoop writes a loop over CX blocks of streamVecs vectors; body
// emits one iteration given the store instruction; ptrs are advanced by
// the block size. With nt, a second loop with non-temporal stores is
// selected by the flag at ntArg.
func (g *gen) streamLoop(name string, in isa, dt dtype, ntArg string, ptrs []string, body func(store string)) {
	block := streamVecs * in.vbytes
	g.ins("SHRQ $%d, CX", log2(block/dt.size))
	g.ins("JEQ done_%s", name)
	loops := []string{"loop"}
	if ntArg != "" {
		g.ins("CMPB %s, $0", ntArg)
		g.ins("JNE ntloop_%s", name)
		loops = append(loops, "ntloop")
	}
	for _, l := range loops {
		g.p("%s_%s:", l, name)
		store := "VMOVUP" + dt.sfx[1:]
		if l == "ntloop" {
			store = "VMOVNT" + dt.sfx
		}
		body(store)
		for _, p := range ptrs {
			g.ins("ADDQ $%d, %s", block, p)
		}
		g.ins("DECQ CX")
		g.ins("JNE %s_%s", l, name)
		if l == "ntloop" {
			g.ins("SFENCE")
		}
		g.ins("JMP done_%s", name)
	}
	g.p("done_%s:", name)
	g.ins("VZEROUPPER")
	g.ins("RET")
	g.p("")
}

func (g *gen) bin(in isa, dt dtype, op string) string {
	name := fmt.Sprintf("%s%s%s", strings.ToLower(op), dt.name, in.name)
	g.declare(fmt.Sprintf("%s sets dst[i] = x[i] %s y[i] for n elements (a multiple of %d) with %s; nt selects non-temporal stores (dst 64-byte aligned).",
		name, map[string]string{"ADD": "+", "SUB": "-", "MUL": "*", "DIV": "/"}[op], streamVecs*in.vbytes/dt.size, in.name),
		fmt.Sprintf("%s(dst, x, y *%s, n int, nt bool)", name, dt.gotyp))
	g.p("// func %s(dst, x, y *%s, n int, nt bool)", name, dt.gotyp)
	g.p("TEXT ·%s(SB), NOSPLIT, $0-33", name)
	g.ins("MOVQ dst+0(FP), DI")
	g.ins("MOVQ x+8(FP), SI")
	g.ins("MOVQ y+16(FP), DX")
	g.ins("MOVQ n+24(FP), CX")
	g.streamLoop(name, in, dt, "nt+32(FP)", []string{"DI", "SI", "DX"}, func(store string) {
		for v := 0; v < streamVecs; v++ {
			g.ins("VMOVUP%s %d(SI), %s", dt.sfx[1:], v*in.vbytes, in.r(v))
		}
		for v := 0; v < streamVecs; v++ {
			g.ins("V%s%s %d(DX), %s, %s", op, dt.sfx, v*in.vbytes, in.r(v), in.r(v))
		}
		for v := 0; v < streamVecs; v++ {
			g.ins("%s %s, %d(DI)", store, in.r(v), v*in.vbytes)
		}
	})
	return name
}

func (g *gen) scal(in isa, dt dtype, op string) string {
	name := fmt.Sprintf("%sScalar%s%s", strings.ToLower(op), dt.name, in.name)
	g.declare(fmt.Sprintf("%s sets dst[i] = x[i] %s s for n elements (a multiple of %d) with %s; nt selects non-temporal stores (dst 64-byte aligned).",
		name, map[string]string{"ADD": "+", "MUL": "*"}[op], streamVecs*in.vbytes/dt.size, in.name),
		fmt.Sprintf("%s(dst, x *%s, s %s, n int, nt bool)", name, dt.gotyp, dt.gotyp))
	g.p("// func %s(dst, x *%s, s %s, n int, nt bool)", name, dt.gotyp, dt.gotyp)
	g.p("TEXT ·%s(SB), NOSPLIT, $0-33", name)
	g.ins("MOVQ dst+0(FP), DI")
	g.ins("MOVQ x+8(FP), SI")
	g.ins("%s s+16(FP), %s", dt.bcast, in.r(streamVecs))
	g.ins("MOVQ n+24(FP), CX")
	g.streamLoop(name, in, dt, "nt+32(FP)", []string{"DI", "SI"}, func(store string) {
		for v := 0; v < streamVecs; v++ {
			g.ins("V%s%s %d(SI), %s, %s", op, dt.sfx, v*in.vbytes, in.r(streamVecs), in.r(v))
		}
		for v := 0; v < streamVecs; v++ {
			g.ins("%s %s, %d(DI)", store, in.r(v), v*in.vbytes)
		}
	})
	return name
}

func (g *gen) triad(in isa, dt dtype) string {
	name := fmt.Sprintf("triad%s%s", dt.name, in.name)
	g.declare(fmt.Sprintf("%s sets dst[i] = b[i] + s*c[i] (fused) for n elements (a multiple of %d) with %s; nt selects non-temporal stores (dst 64-byte aligned).",
		name, streamVecs*in.vbytes/dt.size, in.name),
		fmt.Sprintf("%s(dst, b, c *%s, s %s, n int, nt bool)", name, dt.gotyp, dt.gotyp))
	g.p("// func %s(dst, b, c *%s, s %s, n int, nt bool)", name, dt.gotyp, dt.gotyp)
	g.p("TEXT ·%s(SB), NOSPLIT, $0-41", name)
	g.ins("MOVQ dst+0(FP), DI")
	g.ins("MOVQ b+8(FP), SI")
	g.ins("MOVQ c+16(FP), DX")
	g.ins("%s s+24(FP), %s", dt.bcast, in.r(streamVecs))
	g.ins("MOVQ n+32(FP), CX")
	g.streamLoop(name, in, dt, "nt+40(FP)", []string{"DI", "SI", "DX"}, func(store string) {
		for v := 0; v < streamVecs; v++ {
			g.ins("VMOVUP%s %d(SI), %s", dt.sfx[1:], v*in.vbytes, in.r(v))
		}
		for v := 0; v < streamVecs; v++ {
			g.ins("VFMADD231%s %d(DX), %s, %s", dt.sfx, v*in.vbytes, in.r(streamVecs), in.r(v))
		}
		for v := 0; v < streamVecs; v++ {
			g.ins("%s %s, %d(DI)", store, in.r(v), v*in.vbytes)
		}
	})
	return name
}

func (g *gen) axpy(in isa, dt dtype) string {
	name := fmt.Sprintf("axpy%s%s", dt.name, in.name)
	g.declare(fmt.Sprintf("%s computes y[i] += alpha*x[i] (fused) for n elements (a multiple of %d) with %s.",
		name, streamVecs*in.vbytes/dt.size, in.name),
		fmt.Sprintf("%s(alpha %s, x, y *%s, n int)", name, dt.gotyp, dt.gotyp))
	g.p("// func %s(alpha %s, x, y *%s, n int)", name, dt.gotyp, dt.gotyp)
	g.p("TEXT ·%s(SB), NOSPLIT, $0-32", name)
	g.ins("%s alpha+0(FP), %s", dt.bcast, in.r(streamVecs))
	g.ins("MOVQ x+8(FP), SI")
	g.ins("MOVQ y+16(FP), DI")
	g.ins("MOVQ n+24(FP), CX")
	g.streamLoop(name, in, dt, "", []string{"DI", "SI"}, func(store string) {
		for v := 0; v < streamVecs; v++ {
			g.ins("VMOVUP%s %d(DI), %s", dt.sfx[1:], v*in.vbytes, in.r(v))
		}
		for v := 0; v < streamVecs; v++ {
			g.ins("VFMADD231%s %d(SI), %s, %s", dt.sfx, v*in.vbytes, in.r(streamVecs), in.r(v))
		}
		for v := 0; v < streamVecs; v++ {
			g.ins("%s %s, %d(DI)", store, in.r(v), v*in.vbytes)
		}
	})
	return name
}

const redAcc = 8 // accumulators in reductions

// reduce writes sum (dot=false) or dot (dot=true); float32 inputs are
// widened to float64 before accumulating.
func (g *gen) reduce(in isa, dt dtype, dot bool) string {
	streams := 4
	if dot {
		streams = 2 // two arrays: four read streams in all
	}
	return g.reduceX(in, dt, dot, streams, "")
}

// reduceX writes sum or dot. The n elements are read as `streams` equal
// parts streamed side by side, which raises the memory-level parallelism
// of one core (a single read stream does not saturate memory bandwidth).
func (g *gen) reduceX(in isa, dt dtype, dot bool, streams int, suffix string) string {
	kind := "sum"
	if dot {
		kind = "dot"
	}
	name := fmt.Sprintf("%s%s%s%s", kind, dt.name, in.name, suffix)
	// Elements per accumulator step: one float64 vector.
	step := in.vbytes / 8
	block := redAcc * step
	args := "x *" + dt.gotyp + ", n int"
	argsz := 16
	if dot {
		args = "x, y *" + dt.gotyp + ", n int"
		argsz = 24
	}
	g.declare(fmt.Sprintf("%s returns the %s of n elements (a multiple of %d) accumulated in float64 with %s.", name, kind, block, in.name),
		fmt.Sprintf("%s(%s) float64", name, args))
	g.p("// func %s(%s) float64", name, args)
	g.p("TEXT ·%s(SB), NOSPLIT, $0-%d", name, argsz+8)
	g.ins("MOVQ x+0(FP), SI")
	if dot {
		g.ins("MOVQ y+8(FP), DX")
	}
	g.ins("MOVQ n+%d(FP), CX", argsz-8)
	for a := 0; a < redAcc; a++ {
		g.ins("%s %s, %s, %s", in.zero, in.r(a), in.r(a), in.r(a))
	}
	// Stream s reads x (and y) from element s*n/streams on.
	xr := []string{"SI", "R8", "R11", "R13"}
	yr := []string{"DX", "R9", "R12", "R14"}
	if streams > 1 {
		g.ins("MOVQ CX, R10")
		g.ins("SHLQ $%d, R10", log2(dt.size)-log2(streams))
		for st := 1; st < streams; st++ {
			g.ins("LEAQ (%s)(R10*1), %s", xr[st-1], xr[st])
			if dot {
				g.ins("LEAQ (%s)(R10*1), %s", yr[st-1], yr[st])
			}
		}
	}
	g.ins("SHRQ $%d, CX", log2(block))
	g.ins("JEQ reduce_%s", name)
	g.p("loop_%s:", name)
	eb := step * dt.size // input bytes per accumulator step
	per := redAcc / streams
	t := func(a int) string { return in.r(redAcc + a) }
	for a := 0; a < redAcc; a++ {
		xp, yp := xr[a/per], yr[a/per]
		off := (a % per) * eb
		switch {
		case !dot && dt.size == 8:
			g.ins("VADDPD %d(%s), %s, %s", off, xp, in.r(a), in.r(a))
		case !dot:
			g.ins("VCVTPS2PD %d(%s), %s", off, xp, t(a))
			g.ins("VADDPD %s, %s, %s", t(a), in.r(a), in.r(a))
		case dt.size == 8:
			g.ins("VMOVUPD %d(%s), %s", off, xp, t(a))
			g.ins("VFMADD231PD %d(%s), %s, %s", off, yp, t(a), in.r(a))
		default:
			g.ins("VCVTPS2PD %d(%s), %s", off, xp, t(a))
			g.ins("VCVTPS2PD %d(%s), %s", off, yp, t((a+4)%redAcc))
			g.ins("VFMADD231PD %s, %s, %s", t((a+4)%redAcc), t(a), in.r(a))
		}
	}
	adv := block / streams * dt.size
	for st := 0; st < streams; st++ {
		g.ins("ADDQ $%d, %s", adv, xr[st])
		if dot {
			g.ins("ADDQ $%d, %s", adv, yr[st])
		}
	}
	g.ins("DECQ CX")
	g.ins("JNE loop_%s", name)
	g.p("reduce_%s:", name)
	for w := redAcc / 2; w >= 1; w /= 2 {
		for a := 0; a < w; a++ {
			g.ins("VADDPD %s, %s, %s", in.r(a+w), in.r(a), in.r(a))
		}
	}
	if in.reg == "Z" {
		g.ins("VEXTRACTF64X4 $1, Z0, Y1")
		g.ins("VADDPD Y1, Y0, Y0")
	}
	g.ins("VEXTRACTF128 $1, Y0, X1")
	g.ins("VADDPD X1, X0, X0")
	g.ins("VUNPCKHPD X0, X0, X1")
	g.ins("VADDSD X1, X0, X0")
	g.ins("VZEROUPPER")
	g.ins("MOVSD X0, ret+%d(FP)", argsz)
	g.ins("RET")
	g.p("")
	return name
}

const header = `// Code generated by asmgen; DO NOT EDIT.

//go:build amd64 && !purego

`

func main() {
	out := flag.String("out", "..", "directory of package kern")
	flag.Parse()

	var gm, st gen
	gm.s.WriteString(header + "#include \"textflag.h\"\n\n")
	st.s.WriteString(header + "#include \"textflag.h\"\n\n")

	gm.gemmKernel(avx512, f64, 12, 2, 2)
	gm.gemmKernel(avx512, f32, 12, 2, 2)
	gm.gemmKernel(avx2, f64, 6, 2, 2)
	gm.gemmKernel(avx2, f32, 6, 2, 2)

	for _, in := range []isa{avx512, avx2} {
		for _, dt := range []dtype{f64, f32} {
			for _, op := range []string{"ADD", "SUB", "MUL", "DIV"} {
				st.bin(in, dt, op)
			}
			st.scal(in, dt, "ADD")
			st.scal(in, dt, "MUL")
			st.triad(in, dt)
			st.axpy(in, dt)
			st.reduce(in, dt, false)
			st.reduce(in, dt, true)
		}
	}

	var decl bytes.Buffer
	decl.WriteString(header + "package kern\n\n")
	decl.Write(gm.decl.Bytes())
	decl.Write(st.decl.Bytes())
	src, err := format.Source(decl.Bytes())
	if err != nil {
		log.Fatal(err)
	}
	for name, data := range map[string][]byte{
		"gemm_amd64.s":   gm.s.Bytes(),
		"stream_amd64.s": st.s.Bytes(),
		"decl_amd64.go":  src,
	} {
		if err := os.WriteFile(filepath.Join(*out, name), data, 0o644); err != nil {
			log.Fatal(err)
		}
	}
}
