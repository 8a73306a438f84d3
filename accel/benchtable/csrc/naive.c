#include <stdio.h>
#include <stdlib.h>
#include <omp.h>

static int cmp(const void *x, const void *y) {
	double a = *(const double *)x, b = *(const double *)y;
	return (a > b) - (a < b);
}

int main(int argc, char **argv) {
	if (argc != 3) {
		fprintf(stderr, "usage: %s n reps\n", argv[0]);
		return 2;
	}
	int n = atoi(argv[1]), reps = atoi(argv[2]);
	if (n < 1 || reps < 2) {
		fprintf(stderr, "bad n or reps\n");
		return 2;
	}
	double *A = malloc(sizeof(double) * n * n), *B = malloc(sizeof(double) * n * n), *C = malloc(sizeof(double) * n * n);
	double *t = malloc(reps * sizeof(double));
	for (long i = 0; i < (long)n * n; i++) {
		A[i] = (double)(i % 7) - 3;
		B[i] = (double)(i % 5) - 2;
	}
	for (int r = 0; r < reps; r++) {
		double t0 = omp_get_wtime();
		int i;
#pragma omp parallel for schedule(static)
		for (i = 0; i < n; i++)
			for (int j = 0; j < n; j++) {
				double s = 0;
				for (int k = 0; k < n; k++) s += A[(long)i * n + k] * B[(long)k * n + j];
				C[(long)i * n + j] = s;
			}
		t[r] = omp_get_wtime() - t0;
	}
	qsort(t + 1, reps - 1, sizeof(double), cmp);
	printf("median %.9f\n", t[1 + (reps - 1) / 2]);
	printf("threads %d\n", omp_get_max_threads());
	return C[n + 1] == 12345.678 ? 3 : 0;
}
