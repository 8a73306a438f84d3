#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <cblas.h>

static int cmp(const void *x, const void *y) {
	double a = *(const double *)x, b = *(const double *)y;
	return (a > b) - (a < b);
}

static double now(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
	if (argc != 5) {
		fprintf(stderr, "usage: %s d|s n reps threads\n", argv[0]);
		return 2;
	}
	char dt = argv[1][0];
	if (dt != 'd' && dt != 's') {
		fprintf(stderr, "dtype must be d or s\n");
		return 2;
	}
	int n = atoi(argv[2]), reps = atoi(argv[3]), threads = atoi(argv[4]);
	if (n < 1 || reps < 2 || threads < 1) {
		fprintf(stderr, "bad arguments\n");
		return 2;
	}
	openblas_set_num_threads(threads);
	double *t = malloc(reps * sizeof(double));
	long nn = (long)n * n;
	double *A = malloc(sizeof(double) * nn), *B = malloc(sizeof(double) * nn), *C = malloc(sizeof(double) * nn);
	float *As = malloc(sizeof(float) * nn), *Bs = malloc(sizeof(float) * nn), *Cs = malloc(sizeof(float) * nn);
	for (long i = 0; i < nn; i++) {
		A[i] = (double)(i % 7) - 3;
		B[i] = (double)(i % 5) - 2;
		As[i] = (float)A[i];
		Bs[i] = (float)B[i];
	}
	for (int r = 0; r < reps; r++) {
		double t0 = now();
		if (dt == 'd')
			cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0, A, n, B, n, 0.0, C, n);
		else
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, As, n, Bs, n, 0.0f, Cs, n);
		t[r] = now() - t0;
	}
	qsort(t + 1, reps - 1, sizeof(double), cmp);
	printf("median %.9f\n", t[1 + (reps - 1) / 2]);
	printf("core %s\n", openblas_get_corename());
	printf("threads %d\n", openblas_get_num_threads());
	return 0;
}
