// fakecublas.c is a test double for cuBLAS (libcublas.so.X), the v2 API:
// handles, streams, version queries and the column-major GEMMs, computed
// on the host with the argument checks cublas_api.h documents (leading
// dimensions, operations, batch counts). A handle needs the primary context
// current on the calling thread, and a library newer than the driver fails
// to initialise as the real one does; every matrix must lie inside live
// fake device memory (fakecuda.c's fakecuda_valid_range).
//
// Build: cc -shared -fPIC -o libcublas.so.12 fakecublas.c -DCUBLAS_MAJOR=12 -ldl
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum {
	CUBLAS_STATUS_SUCCESS = 0, CUBLAS_STATUS_NOT_INITIALIZED = 1, CUBLAS_STATUS_INVALID_VALUE = 7,
	CUBLAS_STATUS_EXECUTION_FAILED = 13,
};
enum { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1 };

typedef struct { int live; void *stream; } Handle;

static long long calls, batched_calls;

long long fakecublas_get(const char *key) {
	if (!strcmp(key, "calls")) return calls;
	if (!strcmp(key, "batched_calls")) return batched_calls;
	return -1;
}

static int (*has_context)(void);
static int (*valid_range)(const void *, size_t);
static long long (*driver_get)(const char *);

static int bind(void) {
	if (!has_context) {
		has_context = (int (*)(void))dlsym(RTLD_DEFAULT, "fakecuda_has_context");
		valid_range = (int (*)(const void *, size_t))dlsym(RTLD_DEFAULT, "fakecuda_valid_range");
		driver_get = (long long (*)(const char *))dlsym(RTLD_DEFAULT, "fakecuda_get");
	}
	return has_context && valid_range && driver_get;
}

const char *cublasGetStatusString(int s) {
	switch (s) {
	case 0: return "the operation completed successfully";
	case 1: return "the library was not initialized";
	case 7: return "an invalid numeric value was used as an argument";
	case 13: return "the GPU program failed to execute";
	}
	return "unknown error";
}

int cublasGetProperty(int type, int *value) {
	if (!value) return CUBLAS_STATUS_INVALID_VALUE;
	switch (type) {
	case 0: *value = CUBLAS_MAJOR; break;
	case 1: *value = 2; break;
	case 2: *value = 1; break;
	default: return CUBLAS_STATUS_INVALID_VALUE;
	}
	return 0;
}

int cublasCreate_v2(Handle **h) {
	if (!h) return CUBLAS_STATUS_INVALID_VALUE;
	if (!bind() || !has_context()) return CUBLAS_STATUS_NOT_INITIALIZED;
	if (driver_get("driver_version") / 1000 < CUBLAS_MAJOR) return CUBLAS_STATUS_NOT_INITIALIZED; // cudaErrorInsufficientDriver
	Handle *hd = calloc(1, sizeof *hd);
	hd->live = 1;
	*h = hd;
	return 0;
}

int cublasDestroy_v2(Handle *h) {
	if (!h || !h->live) return CUBLAS_STATUS_NOT_INITIALIZED;
	h->live = 0;
	free(h);
	return 0;
}

int cublasGetVersion_v2(Handle *h, int *v) {
	if (!h || !h->live) return CUBLAS_STATUS_NOT_INITIALIZED;
	if (!v) return CUBLAS_STATUS_INVALID_VALUE;
	*v = CUBLAS_MAJOR * 10000 + 200 + 1;
	return 0;
}

int cublasSetStream_v2(Handle *h, void *stream) {
	if (!h || !h->live) return CUBLAS_STATUS_NOT_INITIALIZED;
	h->stream = stream;
	return 0;
}

// check validates one GEMM's arguments (column-major, cublas_api.h rules)
// and that each operand of each batch lies in device memory.
static int check(Handle *h, int ta, int tb, int m, int n, int k, const void *alpha, const void *A, int lda, long long sa,
		const void *B, int ldb, long long sb, const void *beta, void *C, int ldc, long long sc, int count, size_t es) {
	if (!h || !h->live || !has_context()) return CUBLAS_STATUS_NOT_INITIALIZED;
	if ((ta != CUBLAS_OP_N && ta != CUBLAS_OP_T) || (tb != CUBLAS_OP_N && tb != CUBLAS_OP_T)) return CUBLAS_STATUS_INVALID_VALUE;
	if (m < 0 || n < 0 || k < 0 || count < 0 || !alpha || !beta) return CUBLAS_STATUS_INVALID_VALUE;
	int arows = ta == CUBLAS_OP_N ? m : k, acols = ta == CUBLAS_OP_N ? k : m;
	int brows = tb == CUBLAS_OP_N ? k : n, bcols = tb == CUBLAS_OP_N ? n : k;
	if (lda < (arows > 1 ? arows : 1) || ldb < (brows > 1 ? brows : 1) || ldc < (m > 1 ? m : 1)) return CUBLAS_STATUS_INVALID_VALUE;
	if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;
	for (int b = 0; b < count; b++) {
		if (k > 0 && !valid_range((const char *)A + sa * b * es, ((size_t)lda * (acols - 1) + arows) * es)) return CUBLAS_STATUS_EXECUTION_FAILED;
		if (k > 0 && !valid_range((const char *)B + sb * b * es, ((size_t)ldb * (bcols - 1) + brows) * es)) return CUBLAS_STATUS_EXECUTION_FAILED;
		if (!valid_range((char *)C + sc * b * es, ((size_t)ldc * (n - 1) + m) * es)) return CUBLAS_STATUS_EXECUTION_FAILED;
	}
	return CUBLAS_STATUS_SUCCESS;
}

#define GEMM(T, NAME, BNAME) \
static void gemm_##T(int ta, int tb, int m, int n, int k, T alpha, const T *A, int lda, const T *B, int ldb, T beta, T *C, int ldc) { \
	for (int j = 0; j < n; j++) \
		for (int i = 0; i < m; i++) { \
			T s = 0; \
			for (int l = 0; l < k; l++) { \
				T a = ta == CUBLAS_OP_N ? A[i + (size_t)l * lda] : A[l + (size_t)i * lda]; \
				T b = tb == CUBLAS_OP_N ? B[l + (size_t)j * ldb] : B[j + (size_t)l * ldb]; \
				s += a * b; \
			} \
			T *c = &C[i + (size_t)j * ldc]; \
			*c = beta == 0 ? alpha * s : alpha * s + beta * *c; \
		} \
} \
int NAME(Handle *h, int ta, int tb, int m, int n, int k, const T *alpha, const T *A, int lda, const T *B, int ldb, \
		const T *beta, T *C, int ldc) { \
	int rc = check(h, ta, tb, m, n, k, alpha, A, lda, 0, B, ldb, 0, beta, C, ldc, 0, 1, sizeof(T)); \
	if (rc || m == 0 || n == 0) return rc; \
	calls++; \
	gemm_##T(ta, tb, m, n, k, *alpha, A, lda, B, ldb, *beta, C, ldc); \
	return 0; \
} \
int BNAME(Handle *h, int ta, int tb, int m, int n, int k, const T *alpha, const T *A, int lda, long long sa, \
		const T *B, int ldb, long long sb, const T *beta, T *C, int ldc, long long sc, int count) { \
	int rc = check(h, ta, tb, m, n, k, alpha, A, lda, sa, B, ldb, sb, beta, C, ldc, sc, count, sizeof(T)); \
	if (rc || m == 0 || n == 0) return rc; \
	batched_calls++; \
	for (int b = 0; b < count; b++) \
		gemm_##T(ta, tb, m, n, k, *alpha, A + sa * b, lda, B + sb * b, ldb, *beta, C + sc * b, ldc); \
	return 0; \
}
GEMM(float, cublasSgemm_v2, cublasSgemmStridedBatched)
GEMM(double, cublasDgemm_v2, cublasDgemmStridedBatched)
