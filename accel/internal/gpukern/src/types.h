// Types every kernel library (OpenCL, CUDA and Metal) shares. Meta mirrors
// gpukern.Meta: a shape and two stride vectors, passed by value. VI is a
// reduction's running value with the index it came from.
typedef struct { I64 n[8]; I64 a[8]; I64 b[8]; int nd; int pad; } Meta;
typedef struct { ACC v; I64 i; } VI;

