// fakecuda.c is a test double for libcuda.so.1 and libnvrtc.so: it runs a
// few of accel's kernels on the CPU so that the Go binding's calls (argument
// marshalling, the 11-argument cuLaunchKernel, pinned parameter arrays,
// Meta by value, the one-thread-per-context rule) are checked without a GPU.
// Build: cc -shared -fPIC -o libcuda.so.1 fakecuda.c -lpthread
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct { long long n[8], a[8], b[8]; int nd, pad; } Meta;
typedef struct { int f64; } Module;
typedef struct { char name[64]; int f64; } Func;
typedef struct { char *src; int f64; char log[256]; } Prog;

static pthread_t ctx_thread;
static int have_ctx;

#define ON_CTX_THREAD() do { if (!have_ctx || !pthread_equal(ctx_thread, pthread_self())) return 201; } while (0)

int cuInit(unsigned f) { return 0; }
int cuDeviceGetCount(int *n) { *n = 1; return 0; }
int cuDeviceGet(int *d, int o) { *d = o; return o == 0 ? 0 : 101; }
int cuDeviceGetName(char *s, int n, int d) { strncpy(s, "Fake GPU", n); return 0; }
int cuDeviceGetAttribute(int *v, int a, int d) {
	switch (a) {
	case 1: *v = 1024; break;
	case 6: case 7: *v = 65535; break;
	case 75: *v = 9; break;
	case 76: *v = 0; break;
	default: *v = 0;
	}
	return 0;
}
int cuDeviceTotalMem_v2(uint64_t *b, int d) { *b = 1ull << 30; return 0; }
int cuCtxCreate_v2(uintptr_t *c, unsigned f, int d) { ctx_thread = pthread_self(); have_ctx = 1; *c = 0x1234; return 0; }
int cuCtxDestroy_v2(uintptr_t c) { return 0; }
int cuCtxSynchronize(void) { ON_CTX_THREAD(); return 0; }
int cuGetErrorName(int code, const char **s) { *s = code == 2 ? "CUDA_ERROR_OUT_OF_MEMORY" : code == 201 ? "CUDA_ERROR_INVALID_CONTEXT" : "CUDA_ERROR_FAKE"; return 0; }
int cuMemAlloc_v2(uint64_t *p, size_t n) {
	ON_CTX_THREAD();
	if (n > (1ull << 32)) return 2;
	*p = (uint64_t)(uintptr_t)malloc(n);
	return 0;
}
int cuMemFree_v2(uint64_t p) { ON_CTX_THREAD(); free((void *)(uintptr_t)p); return 0; }
int cuMemcpyHtoD_v2(uint64_t d, const void *s, size_t n) { ON_CTX_THREAD(); memcpy((void *)(uintptr_t)d, s, n); return 0; }
int cuMemcpyDtoH_v2(void *d, uint64_t s, size_t n) { ON_CTX_THREAD(); memcpy(d, (void *)(uintptr_t)s, n); return 0; }
int cuModuleLoadData(uintptr_t *m, const void *image) {
	ON_CTX_THREAD();
	Module *mod = malloc(sizeof *mod);
	mod->f64 = strstr((const char *)image, "T=double") != NULL;
	*m = (uintptr_t)mod;
	return 0;
}
int cuModuleUnload(uintptr_t m) { free((void *)m); return 0; }
int cuModuleGetFunction(uintptr_t *f, uintptr_t m, const char *name) {
	ON_CTX_THREAD();
	Func *fn = malloc(sizeof *fn);
	strncpy(fn->name, name, sizeof fn->name - 1);
	fn->f64 = ((Module *)m)->f64;
	*f = (uintptr_t)fn;
	return 0;
}

#define KERNELS(T, SUF) \
static double binop_##SUF(int op, T a, T b) { \
	switch (op) { case 1: return a + b; case 2: return a - b; case 3: return a * b; case 4: return a / b; } \
	return 0; \
} \
static int run_##SUF(const char *k, long long G[3], long long B[3], void **p) { \
	long long nx = G[0] * B[0]; \
	if (!strcmp(k, "k_binary")) { \
		T *o = *(T **)p[0], *x = *(T **)p[1], *y = *(T **)p[2]; long long n = *(long long *)p[3]; int op = *(int *)p[4]; \
		for (long long i = 0; i < nx; i++) if (i < n) o[i] = (T)binop_##SUF(op, x[i], y[i]); \
	} else if (!strcmp(k, "k_add")) { \
		T *o = *(T **)p[0], *x = *(T **)p[1], *y = *(T **)p[2]; long long n = *(long long *)p[3]; \
		for (long long i = 0; i < nx && i < n; i++) o[i] = x[i] + y[i]; \
	} else if (!strcmp(k, "k_binary_bcast")) { \
		T *o = *(T **)p[0], *x = *(T **)p[1], *y = *(T **)p[2]; long long n = *(long long *)p[3]; int op = *(int *)p[4]; \
		Meta *m = (Meta *)p[5]; \
		for (long long i = 0; i < nx && i < n; i++) { \
			long long r = i, xo = 0, yo = 0; \
			for (int d = m->nd - 1; d >= 0; d--) { long long q = r % m->n[d]; r /= m->n[d]; xo += q * m->a[d]; yo += q * m->b[d]; } \
			o[i] = (T)binop_##SUF(op, x[xo], y[yo]); \
		} \
	} else if (!strcmp(k, "k_binary_scalar")) { \
		T *o = *(T **)p[0], *x = *(T **)p[1], s = *(T *)p[2]; long long n = *(long long *)p[3]; int op = *(int *)p[4], first = *(int *)p[5]; \
		for (long long i = 0; i < nx && i < n; i++) o[i] = (T)(first ? binop_##SUF(op, s, x[i]) : binop_##SUF(op, x[i], s)); \
	} else if (!strcmp(k, "k_axpy")) { \
		T *y = *(T **)p[0], *x = *(T **)p[1], a = *(T *)p[2]; long long n = *(long long *)p[3]; \
		for (long long i = 0; i < nx && i < n; i++) y[i] += a * x[i]; \
	} else if (!strcmp(k, "k_triad")) { \
		T *o = *(T **)p[0], *b = *(T **)p[1], *c = *(T **)p[2], s = *(T *)p[3]; long long n = *(long long *)p[4]; \
		for (long long i = 0; i < nx && i < n; i++) o[i] = b[i] + s * c[i]; \
	} else if (!strcmp(k, "k_gather")) { \
		T *o = *(T **)p[0], *x = *(T **)p[1]; long long n = *(long long *)p[2], off = *(long long *)p[3]; Meta *m = (Meta *)p[4]; \
		for (long long i = 0; i < nx && i < n; i++) { \
			long long r = i, q0 = off; \
			for (int d = m->nd - 1; d >= 0; d--) { long long q = r % m->n[d]; r /= m->n[d]; q0 += q * m->a[d]; } \
			o[i] = x[q0]; \
		} \
	} else if (!strcmp(k, "k_copy2d")) { \
		T *o = *(T **)p[0], *x = *(T **)p[1]; long long rows = *(long long *)p[2], cols = *(long long *)p[3], st = *(long long *)p[4], off = *(long long *)p[5]; \
		for (long long i = 0; i < nx && i < rows * cols; i++) o[off + (i / cols) * st + i % cols] = x[i]; \
	} else if (!strcmp(k, "k_matmul")) { \
		T *C = *(T **)p[0], *A = *(T **)p[1], *Bm = *(T **)p[2]; \
		long long M = *(long long *)p[3], N = *(long long *)p[4], K = *(long long *)p[5]; Meta *m = (Meta *)p[6]; \
		if (B[0] != 16 || B[1] != 16) return 1; \
		for (long long bt = 0; bt < G[2]; bt++) { \
			long long r = bt, ao = 0, bo = 0; \
			for (int d = m->nd - 1; d >= 0; d--) { long long q = r % m->n[d]; r /= m->n[d]; ao += q * m->a[d]; bo += q * m->b[d]; } \
			for (long long row = 0; row < G[1] * B[1] && row < M; row++) \
				for (long long col = 0; col < nx && col < N; col++) { \
					T s = 0; \
					for (long long kk = 0; kk < K; kk++) s += A[ao + row * K + kk] * Bm[bo + kk * N + col]; \
					C[bt * M * N + row * N + col] = s; \
				} \
		} \
	} else { \
		return 801; \
	} \
	return 0; \
}
KERNELS(float, f32)
KERNELS(double, f64)

int cuLaunchKernel(uintptr_t f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
		unsigned shmem, uintptr_t stream, void **params, void **extra) {
	ON_CTX_THREAD();
	Func *fn = (Func *)f;
	if (shmem != 0 || stream != 0 || extra != NULL || bz != 1) return 1;
	long long G[3] = {gx, gy, gz}, B[3] = {bx, by, bz};
	return fn->f64 ? run_f64(fn->name, G, B, params) : run_f32(fn->name, G, B, params);
}

int nvrtcCreateProgram(uintptr_t *p, const char *src, const char *name, int nh, const char **h, const char **hn) {
	Prog *pr = calloc(1, sizeof *pr);
	pr->src = strdup(src);
	*p = (uintptr_t)pr;
	return 0;
}
int nvrtcCompileProgram(uintptr_t p, int n, const char **opts) {
	Prog *pr = (Prog *)p;
	int arch = 0;
	for (int i = 0; i < n; i++) {
		if (!strcmp(opts[i], "-DT=double")) pr->f64 = 1;
		if (!strcmp(opts[i], "--gpu-architecture=compute_90")) arch = 1;
	}
	if (!arch) { strcpy(pr->log, "fake nvrtc: expected --gpu-architecture=compute_90"); return 6; }
	if (strstr(pr->src, "undefined_name")) { strcpy(pr->log, "accel.cu(1): error: identifier \"undefined_name\" is undefined"); return 6; }
	return 0;
}
static const char *ptx(Prog *pr) { return pr->f64 ? "// fake PTX T=double" : "// fake PTX T=float"; }
int nvrtcGetPTXSize(uintptr_t p, size_t *n) { *n = strlen(ptx((Prog *)p)) + 1; return 0; }
int nvrtcGetPTX(uintptr_t p, char *out) { strcpy(out, ptx((Prog *)p)); return 0; }
int nvrtcGetProgramLogSize(uintptr_t p, size_t *n) { *n = strlen(((Prog *)p)->log) + 1; return 0; }
int nvrtcGetProgramLog(uintptr_t p, char *out) { strcpy(out, ((Prog *)p)->log); return 0; }
int nvrtcDestroyProgram(uintptr_t *p) { Prog *pr = (Prog *)*p; free(pr->src); free(pr); *p = 0; return 0; }
