// fakecuda.c is a test double for the CUDA driver, libcuda.so.1. It follows
// cuda.h's semantics for the calls accel's backend makes (argument checks,
// error codes, the primary context and which thread it is current on,
// stream-ordered allocation, JIT log options) and runs kernels on the CPU:
// a module is a shared object that the fake NVRTC (fakenvrtc.c) compiled
// from the real kernel source, and every thread of a block runs as a
// coroutine so that __syncthreads() and __shared__ memory behave as on a
// GPU. Device memory is host memory between guard pages, and every pointer a
// launch or copy is given is checked against the live allocations.
//
// Tests change the fake device with fakecuda_set and read its counters with
// fakecuda_get (see fake_test.go); another process can set FAKECUDA_DEVICES
// and FAKECUDA_DRIVER_VERSION.
//
// Build: cc -shared -fPIC -o libcuda.so.1 fakecuda.c -ldl -lpthread
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

typedef unsigned long long CUdeviceptr;
typedef int CUresult;

enum {
	CUDA_SUCCESS = 0, CUDA_ERROR_INVALID_VALUE = 1, CUDA_ERROR_OUT_OF_MEMORY = 2,
	CUDA_ERROR_NOT_INITIALIZED = 3, CUDA_ERROR_NO_DEVICE = 100, CUDA_ERROR_INVALID_DEVICE = 101,
	CUDA_ERROR_INVALID_IMAGE = 200, CUDA_ERROR_INVALID_CONTEXT = 201, CUDA_ERROR_NO_BINARY_FOR_GPU = 209,
	CUDA_ERROR_INVALID_PTX = 218, CUDA_ERROR_UNSUPPORTED_PTX_VERSION = 222, CUDA_ERROR_INVALID_HANDLE = 400,
	CUDA_ERROR_NOT_FOUND = 500, CUDA_ERROR_ILLEGAL_ADDRESS = 700, CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES = 701,
	CUDA_ERROR_ILLEGAL_INSTRUCTION = 715, CUDA_ERROR_NOT_SUPPORTED = 801,
};

static const struct { int code; const char *name, *text; } errors[] = {
	{0, "CUDA_SUCCESS", "no error"},
	{1, "CUDA_ERROR_INVALID_VALUE", "invalid argument"},
	{2, "CUDA_ERROR_OUT_OF_MEMORY", "out of memory"},
	{3, "CUDA_ERROR_NOT_INITIALIZED", "initialization error"},
	{100, "CUDA_ERROR_NO_DEVICE", "no CUDA-capable device is detected"},
	{101, "CUDA_ERROR_INVALID_DEVICE", "invalid device ordinal"},
	{200, "CUDA_ERROR_INVALID_IMAGE", "device kernel image is invalid"},
	{201, "CUDA_ERROR_INVALID_CONTEXT", "invalid device context"},
	{209, "CUDA_ERROR_NO_BINARY_FOR_GPU", "no kernel image is available for execution on the device"},
	{218, "CUDA_ERROR_INVALID_PTX", "a PTX JIT compilation failed"},
	{222, "CUDA_ERROR_UNSUPPORTED_PTX_VERSION", "the provided PTX was compiled with an unsupported toolchain."},
	{400, "CUDA_ERROR_INVALID_HANDLE", "invalid resource handle"},
	{500, "CUDA_ERROR_NOT_FOUND", "named symbol not found"},
	{700, "CUDA_ERROR_ILLEGAL_ADDRESS", "an illegal memory access was encountered"},
	{701, "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES", "too many resources requested for launch"},
	{715, "CUDA_ERROR_ILLEGAL_INSTRUCTION", "an illegal instruction was encountered"},
	{801, "CUDA_ERROR_NOT_SUPPORTED", "operation not supported"},
};

// ---- configuration and counters ----

static struct {
	long long driver_version, devices, cc, max_threads_kernel, pools, total_mem;
} cfg = {12040, 1, 90, 1024, 1, 4ll << 30};

static struct {
	long long syncs, launches, allocs, async_allocs, frees, async_frees, htod, dtoh, dtod;
	long long cubin_loads, ptx_loads, sched_flags, threshold_set, retains;
} stats;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

// A process that loads the fake without calling fakecuda_set (a test
// binary run by the smoke script's own test) configures it from its
// environment: FAKECUDA_DEVICES, FAKECUDA_DRIVER_VERSION.
__attribute__((constructor)) static void config_from_env(void) {
	const char *v;
	if ((v = getenv("FAKECUDA_DEVICES"))) cfg.devices = atoll(v);
	if ((v = getenv("FAKECUDA_DRIVER_VERSION"))) cfg.driver_version = atoll(v);
}

int fakecuda_set(const char *key, long long v) {
	if (!strcmp(key, "driver_version")) cfg.driver_version = v;
	else if (!strcmp(key, "devices")) cfg.devices = v;
	else if (!strcmp(key, "cc")) cfg.cc = v;
	else if (!strcmp(key, "max_threads_kernel")) cfg.max_threads_kernel = v;
	else if (!strcmp(key, "pools")) cfg.pools = v;
	else if (!strcmp(key, "total_mem")) cfg.total_mem = v;
	else return -1;
	return 0;
}

long long fakecuda_get(const char *key) {
#define S(f) if (!strcmp(key, #f)) return stats.f;
	S(syncs) S(launches) S(allocs) S(async_allocs) S(frees) S(async_frees) S(htod) S(dtoh) S(dtod)
	S(cubin_loads) S(ptx_loads) S(sched_flags) S(threshold_set) S(retains)
#undef S
	if (!strcmp(key, "driver_version")) return cfg.driver_version;
	return -1;
}

// ---- initialisation, devices, the primary context ----

static int inited;
static struct { int retained; unsigned flags; } prim;
static __thread void *current; // the context current on this thread

int cuDriverGetVersion(int *v) {
	if (!v) return CUDA_ERROR_INVALID_VALUE;
	*v = (int)cfg.driver_version;
	return 0;
}

int cuInit(unsigned flags) {
	if (flags != 0) return CUDA_ERROR_INVALID_VALUE;
	if (cfg.devices == 0) return CUDA_ERROR_NO_DEVICE;
	inited = 1;
	return 0;
}

#define NEED_INIT() do { if (!inited) return CUDA_ERROR_NOT_INITIALIZED; } while (0)
#define NEED_DEV(d) do { NEED_INIT(); if ((d) < 0 || (d) >= cfg.devices) return CUDA_ERROR_INVALID_DEVICE; } while (0)
#define NEED_CTX() do { NEED_INIT(); if (!current || current != (void *)&prim || !prim.retained) return CUDA_ERROR_INVALID_CONTEXT; } while (0)

int cuDeviceGetCount(int *n) { NEED_INIT(); if (!n) return CUDA_ERROR_INVALID_VALUE; *n = (int)cfg.devices; return 0; }
int cuDeviceGet(int *d, int ordinal) { NEED_DEV(ordinal); if (!d) return CUDA_ERROR_INVALID_VALUE; *d = ordinal; return 0; }
int cuDeviceGetName(char *s, int n, int d) {
	NEED_DEV(d);
	if (!s || n <= 0) return CUDA_ERROR_INVALID_VALUE;
	snprintf(s, n, "Fake GPU");
	return 0;
}
int cuDeviceTotalMem_v2(size_t *b, int d) { NEED_DEV(d); if (!b) return CUDA_ERROR_INVALID_VALUE; *b = cfg.total_mem; return 0; }
int cuDeviceGetAttribute(int *v, int a, int d) {
	NEED_DEV(d);
	if (!v) return CUDA_ERROR_INVALID_VALUE;
	switch (a) {
	case 1: *v = 1024; break;           // MAX_THREADS_PER_BLOCK
	case 2: case 3: *v = 1024; break;   // MAX_BLOCK_DIM_X, _Y
	case 4: *v = 64; break;             // MAX_BLOCK_DIM_Z
	case 5: *v = 2147483647; break;     // MAX_GRID_DIM_X
	case 6: case 7: *v = 65535; break;  // MAX_GRID_DIM_Y, _Z
	case 8: *v = 49152; break;          // MAX_SHARED_MEMORY_PER_BLOCK
	case 16: *v = 4; break;             // MULTIPROCESSOR_COUNT
	case 75: *v = (int)cfg.cc / 10; break;
	case 76: *v = (int)cfg.cc % 10; break;
	case 115: *v = (int)cfg.pools; break; // MEMORY_POOLS_SUPPORTED
	default: return CUDA_ERROR_INVALID_VALUE;
	}
	return 0;
}

int cuDevicePrimaryCtxSetFlags_v2(int d, unsigned flags) {
	NEED_DEV(d);
	unsigned sched = flags & 7;
	if (sched == 3 || sched > 4 || (flags & ~0xffu)) return CUDA_ERROR_INVALID_VALUE;
	prim.flags = flags;
	stats.sched_flags = sched;
	return 0;
}
int cuDevicePrimaryCtxGetState(int d, unsigned *flags, int *active) {
	NEED_DEV(d);
	if (!flags || !active) return CUDA_ERROR_INVALID_VALUE;
	*flags = prim.flags;
	*active = prim.retained > 0;
	return 0;
}
int cuDevicePrimaryCtxRetain(void **ctx, int d) {
	NEED_DEV(d);
	if (!ctx) return CUDA_ERROR_INVALID_VALUE;
	prim.retained++;
	stats.retains++;
	*ctx = &prim;
	return 0;
}
int cuDevicePrimaryCtxRelease_v2(int d) {
	NEED_DEV(d);
	if (prim.retained == 0) return CUDA_ERROR_INVALID_CONTEXT;
	prim.retained--;
	return 0;
}
int cuCtxSetCurrent(void *ctx) {
	NEED_INIT();
	if (ctx && (ctx != (void *)&prim || !prim.retained)) return CUDA_ERROR_INVALID_CONTEXT;
	current = ctx;
	return 0;
}
int cuCtxGetCurrent(void **ctx) { NEED_INIT(); if (!ctx) return CUDA_ERROR_INVALID_VALUE; *ctx = current; return 0; }
int cuCtxSynchronize(void) { NEED_CTX(); __atomic_add_fetch(&stats.syncs, 1, __ATOMIC_SEQ_CST); return 0; }

int cuGetErrorName(int code, const char **s) {
	if (!s) return CUDA_ERROR_INVALID_VALUE;
	for (size_t i = 0; i < sizeof errors / sizeof errors[0]; i++)
		if (errors[i].code == code) { *s = errors[i].name; return 0; }
	*s = NULL;
	return CUDA_ERROR_INVALID_VALUE;
}
int cuGetErrorString(int code, const char **s) {
	if (!s) return CUDA_ERROR_INVALID_VALUE;
	for (size_t i = 0; i < sizeof errors / sizeof errors[0]; i++)
		if (errors[i].code == code) { *s = errors[i].text; return 0; }
	*s = NULL;
	return CUDA_ERROR_INVALID_VALUE;
}

// ---- memory ----

typedef struct { char *map; size_t maplen; char *p; size_t n; } Alloc;
static Alloc *allocs;
static size_t nallocs, capallocs;
static long long used;

// fakecuda_valid_range reports whether [p, p+n) lies inside one live
// allocation; the fake cuBLAS uses it too.
int fakecuda_valid_range(const void *p, size_t n) {
	const char *c = p;
	pthread_mutex_lock(&mu);
	int ok = 0;
	for (size_t i = 0; i < nallocs && !ok; i++)
		ok = c >= allocs[i].p && n <= allocs[i].n && (size_t)(c - allocs[i].p) <= allocs[i].n - n;
	pthread_mutex_unlock(&mu);
	return ok;
}
static int valid_ptr(const void *p) { return fakecuda_valid_range(p, 1); }

// fakecuda_has_context reports whether the primary context is current on
// the calling thread.
int fakecuda_has_context(void) { return inited && current == (void *)&prim && prim.retained; }

// alloc maps n bytes with a PROT_NONE page on either side; the buffer ends
// at the upper guard (rounded to CUDA's 256-byte alignment), so a kernel
// that writes past its end faults.
static int alloc(CUdeviceptr *out, size_t n) {
	if (!out) return CUDA_ERROR_INVALID_VALUE;
	if (n == 0) return CUDA_ERROR_INVALID_VALUE;
	long page = sysconf(_SC_PAGESIZE);
	size_t rounded = (n + 255) & ~(size_t)255;
	size_t pages = (rounded + page - 1) / page * page;
	pthread_mutex_lock(&mu);
	if (used + (long long)n > cfg.total_mem) { pthread_mutex_unlock(&mu); return CUDA_ERROR_OUT_OF_MEMORY; }
	pthread_mutex_unlock(&mu);
	char *m = mmap(NULL, pages + 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m == MAP_FAILED) return CUDA_ERROR_OUT_OF_MEMORY;
	mprotect(m, page, PROT_NONE);
	mprotect(m + page + pages, page, PROT_NONE);
	char *p = m + page + pages - rounded;
	pthread_mutex_lock(&mu);
	if (nallocs == capallocs) {
		capallocs = capallocs ? 2 * capallocs : 256;
		allocs = realloc(allocs, capallocs * sizeof *allocs);
	}
	allocs[nallocs++] = (Alloc){m, pages + 2 * page, p, n};
	used += n;
	pthread_mutex_unlock(&mu);
	*out = (CUdeviceptr)(uintptr_t)p;
	return 0;
}

static int release(CUdeviceptr d) {
	char *p = (char *)(uintptr_t)d;
	pthread_mutex_lock(&mu);
	for (size_t i = 0; i < nallocs; i++) {
		if (allocs[i].p == p) {
			Alloc a = allocs[i];
			allocs[i] = allocs[--nallocs];
			used -= a.n;
			pthread_mutex_unlock(&mu);
			munmap(a.map, a.maplen);
			return 0;
		}
	}
	pthread_mutex_unlock(&mu);
	return CUDA_ERROR_INVALID_VALUE;
}

int cuMemAlloc_v2(CUdeviceptr *p, size_t n) { NEED_CTX(); stats.allocs++; return alloc(p, n); }
int cuMemFree_v2(CUdeviceptr p) { NEED_CTX(); stats.frees++; return release(p); }
int cuMemAllocAsync(CUdeviceptr *p, size_t n, void *stream) {
	NEED_CTX();
	if (!cfg.pools) return CUDA_ERROR_NOT_SUPPORTED;
	if (stream) return CUDA_ERROR_INVALID_HANDLE; // only the legacy stream exists here
	stats.async_allocs++;
	return alloc(p, n);
}
int cuMemFreeAsync(CUdeviceptr p, void *stream) {
	NEED_CTX();
	if (!cfg.pools) return CUDA_ERROR_NOT_SUPPORTED;
	if (stream) return CUDA_ERROR_INVALID_HANDLE;
	stats.async_frees++;
	return release(p); // work is synchronous here, so nothing still uses it
}
static int pool_token;
int cuDeviceGetDefaultMemPool(void **pool, int d) {
	NEED_DEV(d);
	if (!cfg.pools) return CUDA_ERROR_NOT_SUPPORTED;
	if (!pool) return CUDA_ERROR_INVALID_VALUE;
	*pool = &pool_token;
	return 0;
}
int cuMemPoolSetAttribute(void *pool, int attr, void *value) {
	NEED_INIT();
	if (pool != &pool_token || !value) return CUDA_ERROR_INVALID_VALUE;
	if (attr != 4) return CUDA_ERROR_INVALID_VALUE; // only RELEASE_THRESHOLD (cuuint64_t) is modelled
	stats.threshold_set = (long long)*(unsigned long long *)value;
	return 0;
}
int cuMemGetInfo_v2(size_t *free, size_t *total) {
	NEED_CTX();
	if (!free || !total) return CUDA_ERROR_INVALID_VALUE;
	*total = cfg.total_mem;
	*free = cfg.total_mem - used;
	return 0;
}
int cuMemcpyHtoD_v2(CUdeviceptr d, const void *s, size_t n) {
	NEED_CTX();
	if (n && (!s || !fakecuda_valid_range((void *)(uintptr_t)d, n))) return CUDA_ERROR_INVALID_VALUE;
	memcpy((void *)(uintptr_t)d, s, n);
	stats.htod += n;
	return 0;
}
int cuMemcpyDtoH_v2(void *d, CUdeviceptr s, size_t n) {
	NEED_CTX();
	if (n && (!d || !fakecuda_valid_range((void *)(uintptr_t)s, n))) return CUDA_ERROR_INVALID_VALUE;
	memcpy(d, (void *)(uintptr_t)s, n);
	stats.dtoh += n;
	return 0;
}
int cuMemcpyDtoD_v2(CUdeviceptr d, CUdeviceptr s, size_t n) {
	NEED_CTX();
	if (n && (!fakecuda_valid_range((void *)(uintptr_t)d, n) || !fakecuda_valid_range((void *)(uintptr_t)s, n)))
		return CUDA_ERROR_INVALID_VALUE;
	memmove((void *)(uintptr_t)d, (void *)(uintptr_t)s, n);
	stats.dtod += n;
	return 0;
}

// ---- modules ----

typedef struct { unsigned x, y, z; } U3;
typedef int (*launch_fn)(void **params, int (*valid)(const void *), int run);
typedef struct {
	void *so;
	U3 *tid, *bid, *bdim, *gdim;
	void (**barrier)(void);
} Module;
typedef struct { Module *mod; launch_fn launch; int barriers; char name[128]; } Func;

// logf writes a message into a JIT log buffer option and sets its size
// option to the bytes written, as cuModuleLoadDataEx does.
static void jitlog(unsigned n, int *opts, void **vals, int bufOpt, const char *msg) {
	char *buf = NULL;
	int sizeAt = -1;
	size_t size = 0;
	for (unsigned i = 0; i < n; i++) {
		if (opts[i] == bufOpt) buf = vals[i];
		if (opts[i] == bufOpt + 1) { sizeAt = i; size = (size_t)(uintptr_t)vals[i]; }
	}
	if (!buf || sizeAt < 0 || size == 0) return;
	snprintf(buf, size, "%s", msg);
	size_t w = strlen(buf) + 1;
	vals[sizeAt] = (void *)(uintptr_t)w;
}

static int open_module(void **m, const char *path, unsigned n, int *opts, void **vals) {
	void *so = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!so) {
		jitlog(n, opts, vals, 5, dlerror());
		return CUDA_ERROR_INVALID_IMAGE;
	}
	Module *mod = calloc(1, sizeof *mod);
	mod->so = so;
	mod->tid = dlsym(so, "threadIdx");
	mod->bid = dlsym(so, "blockIdx");
	mod->bdim = dlsym(so, "blockDim");
	mod->gdim = dlsym(so, "gridDim");
	mod->barrier = dlsym(so, "__fake_barrier");
	if (!mod->tid || !mod->bid || !mod->bdim || !mod->gdim || !mod->barrier) {
		dlclose(so);
		free(mod);
		return CUDA_ERROR_INVALID_IMAGE;
	}
	*m = mod;
	return 0;
}

int cuModuleLoadDataEx(void **m, const void *image, unsigned n, int *opts, void **vals) {
	NEED_CTX();
	if (!m || !image || (n && (!opts || !vals))) return CUDA_ERROR_INVALID_VALUE;
	for (unsigned i = 0; i < n; i++)
		if (opts[i] != 3 && opts[i] != 4 && opts[i] != 5 && opts[i] != 6 && opts[i] != 12) return CUDA_ERROR_INVALID_VALUE;
	const unsigned char *img = image;
	char msg[512];
	if (img[0] == 0x7f && img[1] == 'E' && img[2] == 'L' && img[3] == 'F') {
		// A cubin: an ELF image whose section headers end it.
		uint64_t shoff;
		uint16_t shentsize, shnum;
		memcpy(&shoff, img + 0x28, 8);
		memcpy(&shentsize, img + 0x3a, 2);
		memcpy(&shnum, img + 0x3c, 2);
		size_t size = shoff + (size_t)shentsize * shnum;
		char path[] = "/tmp/fakecubin-XXXXXX";
		int fd = mkstemp(path);
		if (fd < 0) return CUDA_ERROR_INVALID_IMAGE;
		if (write(fd, img, size) != (ssize_t)size) { close(fd); unlink(path); return CUDA_ERROR_INVALID_IMAGE; }
		close(fd);
		int rc = open_module(m, path, n, opts, vals);
		unlink(path);
		if (rc) return rc;
		int *arch = dlsym(((Module *)*m)->so, "__fake_arch");
		if (!arch || *arch / 10 != cfg.cc / 10 || *arch > cfg.cc) {
			snprintf(msg, sizeof msg, "cubin for sm_%d does not run on this sm_%lld device", arch ? *arch : 0, cfg.cc);
			jitlog(n, opts, vals, 5, msg);
			*m = NULL;
			return CUDA_ERROR_NO_BINARY_FOR_GPU;
		}
		snprintf(msg, sizeof msg, "fake JIT: loaded a cubin for sm_%d", *arch);
		jitlog(n, opts, vals, 3, msg);
		stats.cubin_loads++;
		return 0;
	}
	// PTX text: ".version X.Y" must not be newer than the driver, ".target
	// sm_XY" not above the device; "// fake-so: PATH" names the code.
	const char *text = image;
	const char *v = strstr(text, ".version "), *t = strstr(text, ".target sm_"), *so = strstr(text, "// fake-so: ");
	if (!v || !t || !so) {
		jitlog(n, opts, vals, 5, "ptxas fatal   : Unresolved PTX: not a PTX module");
		return CUDA_ERROR_INVALID_PTX;
	}
	int vmaj = 0, vmin = 0, arch = 0;
	sscanf(v, ".version %d.%d", &vmaj, &vmin);
	sscanf(t, ".target sm_%d", &arch);
	long long dmaj = cfg.driver_version / 1000, dmin = cfg.driver_version % 1000 / 10;
	if (vmaj > dmaj || (vmaj == dmaj && vmin > dmin)) {
		snprintf(msg, sizeof msg, "ptxas application ptx input, line 5; fatal   : Unsupported .version %d.%d; current version is '%lld.%lld'", vmaj, vmin, dmaj, dmin);
		jitlog(n, opts, vals, 5, msg);
		return CUDA_ERROR_UNSUPPORTED_PTX_VERSION;
	}
	if (arch > cfg.cc) {
		snprintf(msg, sizeof msg, "ptxas fatal   : SM version specified by .target (sm_%d) is higher than the device's (sm_%lld)", arch, cfg.cc);
		jitlog(n, opts, vals, 5, msg);
		return CUDA_ERROR_INVALID_PTX;
	}
	char path[4096];
	if (sscanf(so, "// fake-so: %4095s", path) != 1) return CUDA_ERROR_INVALID_PTX;
	int rc = open_module(m, path, n, opts, vals);
	if (rc) return rc;
	snprintf(msg, sizeof msg, "fake JIT: compiled PTX for sm_%d to sm_%lld", arch, cfg.cc);
	jitlog(n, opts, vals, 3, msg);
	stats.ptx_loads++;
	return 0;
}

int cuModuleLoadData(void **m, const void *image) { return cuModuleLoadDataEx(m, image, 0, NULL, NULL); }

int cuModuleUnload(void *m) {
	NEED_CTX();
	if (!m) return CUDA_ERROR_INVALID_HANDLE;
	dlclose(((Module *)m)->so);
	free(m);
	return 0;
}

int cuModuleGetFunction(void **f, void *m, const char *name) {
	NEED_CTX();
	if (!f || !m || !name) return CUDA_ERROR_INVALID_VALUE;
	char sym[160];
	snprintf(sym, sizeof sym, "__fake_launch_%s", name);
	launch_fn fn = (launch_fn)dlsym(((Module *)m)->so, sym);
	if (!fn) return CUDA_ERROR_NOT_FOUND;
	snprintf(sym, sizeof sym, "__fake_barriers_%s", name);
	int *barriers = dlsym(((Module *)m)->so, sym);
	Func *fp = calloc(1, sizeof *fp);
	fp->mod = m;
	fp->launch = fn;
	fp->barriers = !barriers || *barriers;
	snprintf(fp->name, sizeof fp->name, "%s", name);
	*f = fp;
	return 0;
}

int cuFuncGetAttribute(int *v, int attr, void *f) {
	NEED_CTX();
	if (!v || !f) return CUDA_ERROR_INVALID_VALUE;
	if (attr != 0) return CUDA_ERROR_INVALID_VALUE; // MAX_THREADS_PER_BLOCK
	*v = (int)cfg.max_threads_kernel;
	return 0;
}

// ---- launches: one coroutine per thread of a block ----
//
// A kernel whose body calls __syncthreads() runs each thread of a block as
// a coroutine: the scheduler resumes every thread in turn until it reaches
// the barrier or returns, then starts the next round. The switch saves only
// the callee-saved registers (glibc's swapcontext makes a system call per
// switch, too slow for millions of threads); other architectures use
// ucontext. A kernel without barriers runs its threads one after another.

enum { READY, AT_BARRIER, DONE };
#define STACK (64 << 10)
#define MAXT 1024

#if defined(__x86_64__)
// fk_switch(save, to) saves the callee-saved registers on the current
// stack, stores the stack pointer in *save and resumes the stack at to.
void fk_switch(void **save, void *to);
__asm__(".text\n.globl fk_switch\n.type fk_switch,@function\nfk_switch:\n"
	"\tpushq %rbp\n\tpushq %rbx\n\tpushq %r12\n\tpushq %r13\n\tpushq %r14\n\tpushq %r15\n"
	"\tmovq %rsp, (%rdi)\n\tmovq %rsi, %rsp\n"
	"\tpopq %r15\n\tpopq %r14\n\tpopq %r13\n\tpopq %r12\n\tpopq %rbx\n\tpopq %rbp\n\tret\n"
	".size fk_switch, .-fk_switch\n");
#define FAST_SWITCH 1
#elif defined(__aarch64__)
void fk_switch(void **save, void *to);
__asm__(".text\n.globl fk_switch\n.type fk_switch,%function\nfk_switch:\n"
	"\tsub sp, sp, #176\n"
	"\tstp x19, x20, [sp, #0]\n\tstp x21, x22, [sp, #16]\n\tstp x23, x24, [sp, #32]\n"
	"\tstp x25, x26, [sp, #48]\n\tstp x27, x28, [sp, #64]\n\tstp x29, x30, [sp, #80]\n"
	"\tstp d8, d9, [sp, #96]\n\tstp d10, d11, [sp, #112]\n\tstp d12, d13, [sp, #128]\n\tstp d14, d15, [sp, #144]\n"
	"\tmov x2, sp\n\tstr x2, [x0]\n\tmov sp, x1\n"
	"\tldp x19, x20, [sp, #0]\n\tldp x21, x22, [sp, #16]\n\tldp x23, x24, [sp, #32]\n"
	"\tldp x25, x26, [sp, #48]\n\tldp x27, x28, [sp, #64]\n\tldp x29, x30, [sp, #80]\n"
	"\tldp d8, d9, [sp, #96]\n\tldp d10, d11, [sp, #112]\n\tldp d12, d13, [sp, #128]\n\tldp d14, d15, [sp, #144]\n"
	"\tadd sp, sp, #176\n\tret\n"
	".size fk_switch, .-fk_switch\n");
#define FAST_SWITCH 1
#endif

typedef struct {
#ifdef FAST_SWITCH
	void *sp;
#else
	ucontext_t uc;
#endif
	int state;
} Thread;
static Thread threads[MAXT];
static char *stacks;
#ifdef FAST_SWITCH
static void *sched_sp;
#else
static ucontext_t sched;
#endif
static int cur, misplaced_barrier;
static Func *cur_fn;
static void **cur_params;
static pthread_mutex_t launch_mu = PTHREAD_MUTEX_INITIALIZER;

static void to_scheduler(void) {
#ifdef FAST_SWITCH
	fk_switch(&threads[cur].sp, sched_sp);
#else
	swapcontext(&threads[cur].uc, &sched);
#endif
}

static void resume(int t) {
	cur = t;
#ifdef FAST_SWITCH
	fk_switch(&sched_sp, threads[t].sp);
#else
	swapcontext(&sched, &threads[t].uc);
#endif
}

static void barrier(void) {
	threads[cur].state = AT_BARRIER;
	to_scheduler();
}

// direct_barrier is the barrier of a kernel run without coroutines, which
// should have none.
static void direct_barrier(void) { misplaced_barrier = 1; }

#ifdef FAST_SWITCH
// thread_entry is where a new coroutine starts; it never returns.
static void thread_entry(void) {
	int t = cur;
	cur_fn->launch(cur_params, NULL, 1);
	threads[t].state = DONE;
	for (;;) to_scheduler();
}

static void start(int t) {
	char *top = stacks + (size_t)(t + 1) * STACK;
	void **sp = (void **)top;
#if defined(__x86_64__)
	*--sp = NULL;                  // thread_entry's return address, never used
	*--sp = (void *)thread_entry;  // where fk_switch's ret goes
	for (int i = 0; i < 6; i++) *--sp = NULL; // rbp, rbx, r12-r15
#else
	sp -= 176 / sizeof(void *);
	memset(sp, 0, 176);
	sp[11] = (void *)thread_entry; // x30, which ret jumps to
#endif
	threads[t].sp = sp;
	threads[t].state = READY;
}
#else
static void thread_main(int t) {
	cur_fn->launch(cur_params, NULL, 1);
	threads[t].state = DONE;
}

static void start(int t) {
	getcontext(&threads[t].uc);
	threads[t].uc.uc_stack.ss_sp = stacks + (size_t)t * STACK;
	threads[t].uc.uc_stack.ss_size = STACK;
	threads[t].uc.uc_link = &sched;
	makecontext(&threads[t].uc, (void (*)(void))thread_main, 1, t);
	threads[t].state = READY;
}
#endif

int cuLaunchKernel(void *f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
		unsigned shmem, void *stream, void **params, void **extra) {
	NEED_CTX();
	Func *fn = f;
	if (!fn) return CUDA_ERROR_INVALID_HANDLE;
	if (extra || stream || shmem > 49152) return CUDA_ERROR_INVALID_VALUE;
	if (!gx || !gy || !gz || !bx || !by || !bz || gx > 2147483647u || gy > 65535 || gz > 65535) return CUDA_ERROR_INVALID_VALUE;
	if (bx > 1024 || by > 1024 || bz > 64 || (unsigned long long)bx * by * bz > 1024) return CUDA_ERROR_INVALID_VALUE;
	int nt = (int)(bx * by * bz);
	if (nt > cfg.max_threads_kernel) return CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES;
	if (!params) return CUDA_ERROR_INVALID_VALUE;
	if (fn->launch(params, valid_ptr, 0) >= 0) return CUDA_ERROR_ILLEGAL_ADDRESS;
	pthread_mutex_lock(&launch_mu);
	if (!stacks) {
		stacks = mmap(NULL, (size_t)STACK * MAXT, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (stacks == MAP_FAILED) { stacks = NULL; pthread_mutex_unlock(&launch_mu); return CUDA_ERROR_OUT_OF_MEMORY; }
	}
	Module *m = fn->mod;
	*m->bdim = (U3){bx, by, bz};
	*m->gdim = (U3){gx, gy, gz};
	cur_fn = fn;
	cur_params = params;
	int rc = 0;
	misplaced_barrier = 0;
	*m->barrier = fn->barriers ? barrier : direct_barrier;
	for (unsigned z = 0; z < gz && !rc; z++)
	for (unsigned y = 0; y < gy && !rc; y++)
	for (unsigned x = 0; x < gx && !rc; x++) {
		*m->bid = (U3){x, y, z};
		if (!fn->barriers) {
			for (int t = 0; t < nt; t++) {
				*m->tid = (U3){t % bx, t / bx % by, t / (bx * by)};
				fn->launch(params, NULL, 1);
			}
			if (misplaced_barrier) {
				fprintf(stderr, "fakecuda: %s calls __syncthreads() outside its own body, which the fake does not model\n", fn->name);
				rc = CUDA_ERROR_ILLEGAL_INSTRUCTION;
			}
			continue;
		}
		for (int t = 0; t < nt; t++) start(t);
		for (;;) {
			for (int t = 0; t < nt; t++) {
				if (threads[t].state != READY) continue;
				*m->tid = (U3){t % bx, t / bx % by, t / (bx * by)};
				resume(t);
			}
			int done = 0;
			for (int t = 0; t < nt; t++) done += threads[t].state == DONE;
			if (done == nt) break;
			if (done > 0) {
				// Some threads returned while others wait at __syncthreads():
				// undefined on a GPU, an error here.
				fprintf(stderr, "fakecuda: %s: block (%u,%u,%u): %d of %d threads left the kernel while the rest wait at __syncthreads()\n",
					fn->name, x, y, z, done, nt);
				rc = CUDA_ERROR_ILLEGAL_INSTRUCTION;
				break;
			}
			for (int t = 0; t < nt; t++) threads[t].state = READY;
		}
	}
	pthread_mutex_unlock(&launch_mu);
	__atomic_add_fetch(&stats.launches, 1, __ATOMIC_SEQ_CST);
	return rc;
}
