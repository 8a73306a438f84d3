package cuda

import (
	"fmt"
	"runtime"
	"sort"
	"strings"
	"unsafe"

	"github.com/ebitengine/purego"
)

// nvrtc holds one NVRTC library's entry points (nvrtc.h) and what it
// supports.
type nvrtc struct {
	path         string
	major, minor int
	archs        []int // nvrtcGetSupportedArchs, ascending (e.g. 75 for sm_75)

	version     func(major, minor *int32) int32
	numArchs    func(n *int32) int32
	getArchs    func(archs *int32) int32
	errorString func(code int32) string
	create      func(prog *uintptr, src, name *byte, nHeaders int32, headers, includeNames unsafe.Pointer) int32
	compile     func(prog uintptr, nOpts int32, opts **byte) int32
	ptxSize     func(prog uintptr, n *uintptr) int32
	ptx         func(prog uintptr, out *byte) int32
	cubinSize   func(prog uintptr, n *uintptr) int32
	cubin       func(prog uintptr, out *byte) int32
	logSize     func(prog uintptr, n *uintptr) int32
	log         func(prog uintptr, out *byte) int32
	destroy     func(prog *uintptr) int32
}

func (nv *nvrtc) String() string { return fmt.Sprintf("NVRTC %d.%d", nv.major, nv.minor) }

// status names an NVRTC result ("NVRTC_ERROR_COMPILATION (6)").
func (nv *nvrtc) status(code int32) string {
	return fmt.Sprintf("%s (%d)", nv.errorString(code), code)
}

// bindNVRTC binds an opened NVRTC and reads its version and architectures.
func bindNVRTC(lib opened) (*nvrtc, error) {
	nv := &nvrtc{path: lib.path}
	if err := bind(lib.handle, []symbol{
		{&nv.version, "nvrtcVersion"},
		{&nv.numArchs, "nvrtcGetNumSupportedArchs"},
		{&nv.getArchs, "nvrtcGetSupportedArchs"},
		{&nv.errorString, "nvrtcGetErrorString"},
		{&nv.create, "nvrtcCreateProgram"},
		{&nv.compile, "nvrtcCompileProgram"},
		{&nv.ptxSize, "nvrtcGetPTXSize"},
		{&nv.ptx, "nvrtcGetPTX"},
		{&nv.cubinSize, "nvrtcGetCUBINSize"},
		{&nv.cubin, "nvrtcGetCUBIN"},
		{&nv.logSize, "nvrtcGetProgramLogSize"},
		{&nv.log, "nvrtcGetProgramLog"},
		{&nv.destroy, "nvrtcDestroyProgram"},
	}); err != nil {
		return nil, fmt.Errorf("%s: %v (NVRTC 11.2 or newer is needed)", lib.path, err)
	}
	var major, minor, n int32
	if code := nv.version(&major, &minor); code != 0 {
		return nil, fmt.Errorf("%s: nvrtcVersion: %s", lib.path, nv.status(code))
	}
	nv.major, nv.minor = int(major), int(minor)
	if code := nv.numArchs(&n); code != 0 || n <= 0 {
		return nil, fmt.Errorf("%s: nvrtcGetNumSupportedArchs: %s", lib.path, nv.status(code))
	}
	archs := make([]int32, n)
	if code := nv.getArchs(&archs[0]); code != 0 {
		return nil, fmt.Errorf("%s: nvrtcGetSupportedArchs: %s", lib.path, nv.status(code))
	}
	for _, a := range archs {
		nv.archs = append(nv.archs, int(a))
	}
	sort.Ints(nv.archs)
	return nv, nil
}

// loadNVRTC opens every NVRTC among paths and picks the one to compile
// with: the newest whose major version is not above the driver's (a newer
// NVRTC writes PTX and cubins the driver rejects), else the oldest found.
func loadNVRTC(paths []string, driverVersion int) (*nvrtc, error) {
	libs, errs, missing := dlopenAll(paths, purego.RTLD_NOW|purego.RTLD_LOCAL)
	var found []*nvrtc
	for _, lib := range libs {
		nv, err := bindNVRTC(lib)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		found = append(found, nv)
	}
	if len(found) == 0 {
		return nil, fmt.Errorf("%w (the kernels are compiled at run time: install the CUDA toolkit's NVRTC, e.g. pip install nvidia-cuda-nvrtc-cu12, or set AUTONODE_CUDA_LIB_PATH): %s", ErrNoCompiler, notFound(errs, missing))
	}
	sort.SliceStable(found, func(i, j int) bool {
		a, b := found[i], found[j]
		return a.major*1000+a.minor*10 > b.major*1000+b.minor*10
	})
	best := found[len(found)-1] // the oldest, when all are newer than the driver
	for _, nv := range found {
		if nv.major <= driverVersion/1000 {
			best = nv
			break
		}
	}
	preloadSiblings(best.path, "libnvrtc-builtins.so")
	return best, nil
}

// target picks what to compile for a device of compute capability cc
// (e.g. 90): the highest architecture NVRTC supports that is not above the
// device. A cubin of that architecture runs on the device when the major
// versions match (sm_86 code runs on sm_89, not on sm_90); otherwise only
// PTX, which the driver compiles for the device, does.
func (nv *nvrtc) target(cc int) (arch int, cubin bool, err error) {
	for _, a := range nv.archs {
		if a <= cc {
			arch = a
		}
	}
	if arch == 0 {
		return 0, false, fmt.Errorf("%w: %s (%s) compiles for sm_%d to sm_%d, none of which runs on this sm_%d GPU; install an older NVRTC",
			ErrBuild, nv, nv.path, nv.archs[0], nv.archs[len(nv.archs)-1], cc)
	}
	return arch, arch/10 == cc/10, nil
}

// compileCUDA compiles CUDA C++ source with NVRTC and returns the cubin
// (when asked for one) or the PTX. A compile failure wraps ErrBuild and
// carries the compiler log. The source, its name and the options are
// NUL-terminated copies pinned until the program is destroyed, because
// NVRTC may keep the pointers it is given until then.
func (nv *nvrtc) compileCUDA(src string, opts []string, cubin bool) ([]byte, error) {
	var pin runtime.Pinner
	defer pin.Unpin()
	csrc, cname := cBytes(src), cBytes("accel.cu")
	pin.Pin(&csrc[0])
	pin.Pin(&cname[0])
	var prog uintptr
	if code := nv.create(&prog, &csrc[0], &cname[0], 0, nil, nil); code != 0 {
		return nil, fmt.Errorf("cuda: nvrtcCreateProgram: %s", nv.status(code))
	}
	defer func() {
		nv.destroy(&prog)
		runtime.KeepAlive(csrc)
		runtime.KeepAlive(cname)
	}()
	cOpts := make([]*byte, len(opts))
	for i, o := range opts {
		b := cBytes(o)
		pin.Pin(&b[0])
		cOpts[i] = &b[0]
	}
	var optp **byte
	if len(cOpts) > 0 {
		pin.Pin(&cOpts[0])
		optp = &cOpts[0]
	}
	if code := nv.compile(prog, int32(len(cOpts)), optp); code != 0 {
		return nil, fmt.Errorf("%w: nvrtcCompileProgram (%s, %s): %s with options %q; compiler log:\n%s",
			ErrBuild, nv, nv.path, nv.status(code), strings.Join(opts, " "), nv.programLog(prog))
	}
	size, get, what := nv.ptxSize, nv.ptx, "PTX"
	if cubin {
		size, get, what = nv.cubinSize, nv.cubin, "CUBIN"
	}
	var n uintptr
	if code := size(prog, &n); code != 0 || n == 0 {
		return nil, fmt.Errorf("%w: nvrtcGet%sSize: %s, size %d", ErrBuild, what, nv.status(code), n)
	}
	out := make([]byte, n)
	if code := get(prog, &out[0]); code != 0 {
		return nil, fmt.Errorf("%w: nvrtcGet%s: %s", ErrBuild, what, nv.status(code))
	}
	return out, nil
}

func (nv *nvrtc) programLog(prog uintptr) string {
	var n uintptr
	if nv.logSize(prog, &n) != 0 || n <= 1 {
		return "(empty)"
	}
	buf := make([]byte, n)
	if nv.log(prog, &buf[0]) != 0 {
		return "(unreadable)"
	}
	return trimLog(buf)
}
