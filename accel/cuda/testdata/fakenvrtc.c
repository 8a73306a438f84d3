// fakenvrtc.c is a test double for NVRTC (libnvrtc.so.X) that compiles
// CUDA C++ for the fake driver (fakecuda.c): it checks the options as
// nvrtc.h documents them, then builds the source with the host C++ compiler
// against fakekernel.h into a shared object. The "CUBIN" it returns for an
// sm_XY target is that object (an ELF image, as a real cubin is); the "PTX"
// for a compute_XY target is a text module whose .version is this NVRTC's
// version and which names the object. Like NVRTC it does not copy the
// source at nvrtcCreateProgram: the caller must keep it alive (and
// NUL-terminated) until nvrtcDestroyProgram.
//
// Objects are cached in WORKDIR by a hash of the source and options, so
// opening many fake devices in one test binary compiles each program once.
//
// Build one library per version, e.g. cc -shared -fPIC -o libnvrtc.so.12
// fakenvrtc.c -DNVRTC_MAJOR=12 -DNVRTC_MINOR=6 -DNVRTC_ARCHS='50,70,80,90'
// -DCXX='"/usr/bin/c++"' -DINCLUDE='"/path/to/testdata"' -DWORKDIR='"/tmp/x"'.
#define _GNU_SOURCE
#include <ctype.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

enum {
	NVRTC_SUCCESS = 0, NVRTC_ERROR_OUT_OF_MEMORY = 1, NVRTC_ERROR_PROGRAM_CREATION_FAILURE = 2,
	NVRTC_ERROR_INVALID_INPUT = 3, NVRTC_ERROR_INVALID_PROGRAM = 4, NVRTC_ERROR_INVALID_OPTION = 5,
	NVRTC_ERROR_COMPILATION = 6,
};

static const int archs[] = {NVRTC_ARCHS};

// failure, when set, makes every compile fail with it as the log (a
// compiler that rejects the kernels).
static char *failure;

void fakenvrtc_set_failure(const char *log) {
	free(failure);
	failure = log ? strdup(log) : NULL;
}

typedef struct {
	const char *src, *name; // not copied: NVRTC reads them at compile time
	char *log;
	char *so;      // compiled object
	int arch, real; // target architecture; real: sm_XY (cubin) rather than compute_XY
	char *image;
	size_t size;
} Prog;

const char *nvrtcGetErrorString(int r) {
	switch (r) {
	case 0: return "NVRTC_SUCCESS";
	case 1: return "NVRTC_ERROR_OUT_OF_MEMORY";
	case 2: return "NVRTC_ERROR_PROGRAM_CREATION_FAILURE";
	case 3: return "NVRTC_ERROR_INVALID_INPUT";
	case 4: return "NVRTC_ERROR_INVALID_PROGRAM";
	case 5: return "NVRTC_ERROR_INVALID_OPTION";
	case 6: return "NVRTC_ERROR_COMPILATION";
	}
	return "NVRTC_ERROR unknown";
}

int nvrtcVersion(int *major, int *minor) {
	if (!major || !minor) return NVRTC_ERROR_INVALID_INPUT;
	*major = NVRTC_MAJOR;
	*minor = NVRTC_MINOR;
	return 0;
}

int nvrtcGetNumSupportedArchs(int *n) {
	if (!n) return NVRTC_ERROR_INVALID_INPUT;
	*n = sizeof archs / sizeof archs[0];
	return 0;
}

int nvrtcGetSupportedArchs(int *out) {
	if (!out) return NVRTC_ERROR_INVALID_INPUT;
	memcpy(out, archs, sizeof archs);
	return 0;
}

int nvrtcCreateProgram(Prog **p, const char *src, const char *name, int nh, const char *const *h, const char *const *hn) {
	if (!p || !src || nh < 0 || (nh > 0 && (!h || !hn))) return NVRTC_ERROR_INVALID_INPUT;
	Prog *pr = calloc(1, sizeof *pr);
	pr->src = src;
	pr->name = name ? name : "default_program";
	pr->log = strdup("");
	*p = pr;
	return 0;
}

int nvrtcDestroyProgram(Prog **p) {
	if (!p || !*p) return NVRTC_ERROR_INVALID_PROGRAM;
	Prog *pr = *p;
	free(pr->so);
	free(pr->log);
	free(pr->image);
	free(pr);
	*p = NULL;
	return 0;
}

static void setlog(Prog *pr, const char *msg) {
	free(pr->log);
	pr->log = strdup(msg);
}

static char *slurp(const char *path, size_t *size) {
	FILE *f = fopen(path, "rb");
	if (!f) return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *b = malloc(n + 1);
	if (fread(b, 1, n, f) != (size_t)n) { fclose(f); free(b); return NULL; }
	fclose(f);
	b[n] = 0;
	if (size) *size = n;
	return b;
}

// run runs argv, sending its output to the file logpath; it returns the
// exit status.
static int run(char **argv, const char *logpath) {
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	pid_t pid;
	int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0) return -1;
	int status;
	while (waitpid(pid, &status, 0) < 0) {}
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// kernels appends a launcher, __fake_launch_NAME, for every kernel the
// preprocessed source defines (extern "C" __attribute__((used)) void NAME),
// and __fake_barriers_NAME, which says whether its body calls
// __syncthreads() (the driver runs such a kernel's threads as coroutines).
static void kernels(const char *pre, FILE *out) {
	const char *mark = "__attribute__((used))";
	for (const char *p = strstr(pre, mark); p; p = strstr(p + 1, mark)) {
		const char *q = p + strlen(mark);
		while (isspace((unsigned char)*q)) q++;
		if (strncmp(q, "void", 4) != 0) continue;
		q += 4;
		while (isspace((unsigned char)*q)) q++;
		const char *e = q;
		while (isalnum((unsigned char)*e) || *e == '_') e++;
		if (e == q) continue;
		int n = (int)(e - q);
		// The body: from the first '{' after the name to its match.
		const char *b = strchr(e, '{'), *c = b;
		int depth = 0, barriers = 0;
		for (; c && *c; c++) {
			if (*c == '{') depth++;
			if (*c == '}' && --depth == 0) break;
			if (!strncmp(c, "__fake_barrier", 14)) barriers = 1;
		}
		fprintf(out, "extern \"C\" __attribute__((visibility(\"default\"))) int __fake_launch_%.*s(void **p, fake::valid_fn v, int run) "
			"{ return fake::invoke(%.*s, p, v, run); }\n", n, q, n, q);
		fprintf(out, "extern \"C\" __attribute__((visibility(\"default\"))) int __fake_barriers_%.*s = %d;\n", n, q, barriers);
	}
}

int nvrtcCompileProgram(Prog *pr, int n, const char *const *opts) {
	if (!pr) return NVRTC_ERROR_INVALID_PROGRAM;
	if (n < 0 || (n > 0 && !opts)) return NVRTC_ERROR_INVALID_INPUT;
	char *defs[64];
	int nd = 0;
	pr->arch = 0;
	for (int i = 0; i < n; i++) {
		const char *o = opts[i];
		const char *a = NULL;
		if (!strncmp(o, "--gpu-architecture=", 19)) a = o + 19;
		else if (!strncmp(o, "-arch=", 6)) a = o + 6;
		if (a) {
			int real = !strncmp(a, "sm_", 3), virt = !strncmp(a, "compute_", 8);
			int v = real ? atoi(a + 3) : virt ? atoi(a + 8) : 0, ok = 0;
			for (size_t k = 0; k < sizeof archs / sizeof archs[0]; k++) ok |= archs[k] == v;
			if (!ok) {
				char msg[256];
				snprintf(msg, sizeof msg, "nvrtc: error: invalid value for --gpu-architecture (-arch): %s\n", a);
				setlog(pr, msg);
				return NVRTC_ERROR_INVALID_OPTION;
			}
			pr->arch = v;
			pr->real = real;
		} else if (!strncmp(o, "-D", 2) && o[2] && nd < 60) {
			defs[nd++] = (char *)o;
		} else if (strcmp(o, "-default-device") && strcmp(o, "--std=c++17") && strcmp(o, "-std=c++17")) {
			char msg[256];
			snprintf(msg, sizeof msg, "nvrtc: error: unrecognized option %s\n", o);
			setlog(pr, msg);
			return NVRTC_ERROR_INVALID_OPTION;
		}
	}
	if (!pr->arch) pr->arch = archs[0], pr->real = 0; // NVRTC's default is compute_XY of its oldest arch
	if (failure) {
		setlog(pr, failure);
		return NVRTC_ERROR_COMPILATION;
	}
	char base[4096], path[4200], pre[4200], gen[4200], so[4200], logp[4200], archdef[64];
	// The cache key: FNV-1a over the source, the options and the target.
	uint64_t h = 1469598103934665603ull;
	for (const char *c = pr->src; *c; c++) h = (h ^ (unsigned char)*c) * 1099511628211ull;
	for (int i = 0; i < n; i++) {
		for (const char *c = opts[i]; *c; c++) h = (h ^ (unsigned char)*c) * 1099511628211ull;
		h *= 1099511628211ull; // a separator
	}
	h = (h ^ (uint64_t)pr->arch) * 1099511628211ull;
	snprintf(base, sizeof base, "%s/prog-%016llx", WORKDIR, (unsigned long long)h);
	snprintf(path, sizeof path, "%s.cu", base);
	snprintf(pre, sizeof pre, "%s.ii", base);
	snprintf(gen, sizeof gen, "%s.cpp", base);
	snprintf(so, sizeof so, "%s.so", base);
	snprintf(logp, sizeof logp, "%s.log", base);
	snprintf(archdef, sizeof archdef, "-DFAKE_ARCH=%d", pr->arch);
	int rc = 0;
	if (access(so, R_OK) == 0) {
		setlog(pr, "");
		goto built;
	}
	FILE *f = fopen(path, "w");
	if (!f) return NVRTC_ERROR_OUT_OF_MEMORY;
	fputs(pr->src, f);
	fclose(f);
	char *argv[96];
	int ac = 0;
	argv[ac++] = CXX;
	argv[ac++] = "-std=c++17";
	argv[ac++] = "-E";
	argv[ac++] = "-P";
	argv[ac++] = "-include";
	argv[ac++] = INCLUDE "/fakekernel.h";
	argv[ac++] = archdef;
	for (int i = 0; i < nd; i++) argv[ac++] = defs[i];
	argv[ac++] = "-x";
	argv[ac++] = "c++";
	argv[ac++] = path;
	argv[ac++] = "-o";
	argv[ac++] = pre;
	argv[ac] = NULL;
	rc = run(argv, logp);
	char *text = rc == 0 ? slurp(pre, NULL) : NULL;
	if (text) {
		f = fopen(gen, "w");
		fputs(text, f);
		fputs("\n", f);
		kernels(text, f);
		fclose(f);
		free(text);
		ac = 0;
		argv[ac++] = CXX;
		argv[ac++] = "-std=c++17";
		argv[ac++] = "-O1";
		argv[ac++] = "-shared";
		argv[ac++] = "-fPIC";
		argv[ac++] = "-x";
		argv[ac++] = "c++";
		argv[ac++] = gen;
		argv[ac++] = "-o";
		argv[ac++] = so;
		argv[ac++] = "-lm";
		argv[ac] = NULL;
		rc = run(argv, logp);
	} else if (rc == 0) {
		rc = -1;
	}
	char *log = slurp(logp, NULL);
	setlog(pr, log ? log : "");
	free(log);
	unlink(path);
	unlink(pre);
	unlink(gen);
	unlink(logp);
	if (rc != 0) {
		unlink(so);
		return NVRTC_ERROR_COMPILATION;
	}
built:
	free(pr->so);
	pr->so = strdup(so);
	free(pr->image);
	pr->image = NULL;
	if (pr->real) {
		pr->image = slurp(so, &pr->size);
	} else {
		char ptx[8192];
		snprintf(ptx, sizeof ptx,
			"//\n// Generated by the fake NVRTC %d.%d\n//\n\n.version %d.%d\n.target sm_%d\n.address_size 64\n// fake-so: %s\n",
			NVRTC_MAJOR, NVRTC_MINOR, NVRTC_MAJOR, NVRTC_MINOR, pr->arch, so);
		pr->image = strdup(ptx);
		pr->size = strlen(ptx) + 1;
	}
	return 0;
}

int nvrtcGetProgramLogSize(Prog *pr, size_t *n) {
	if (!pr) return NVRTC_ERROR_INVALID_PROGRAM;
	if (!n) return NVRTC_ERROR_INVALID_INPUT;
	*n = strlen(pr->log) + 1;
	return 0;
}
int nvrtcGetProgramLog(Prog *pr, char *out) {
	if (!pr) return NVRTC_ERROR_INVALID_PROGRAM;
	if (!out) return NVRTC_ERROR_INVALID_INPUT;
	strcpy(out, pr->log);
	return 0;
}
int nvrtcGetPTXSize(Prog *pr, size_t *n) {
	if (!pr || !pr->image) return NVRTC_ERROR_INVALID_PROGRAM;
	if (!n) return NVRTC_ERROR_INVALID_INPUT;
	*n = pr->real ? 0 : pr->size;
	return pr->real ? NVRTC_ERROR_INVALID_INPUT : 0; // only a compute_XY build is kept as PTX here
}
int nvrtcGetPTX(Prog *pr, char *out) {
	if (!pr || !pr->image || pr->real) return NVRTC_ERROR_INVALID_PROGRAM;
	if (!out) return NVRTC_ERROR_INVALID_INPUT;
	memcpy(out, pr->image, pr->size);
	return 0;
}
// nvrtcGetCUBINSize is 0 after a build for a virtual (compute_XY) target.
int nvrtcGetCUBINSize(Prog *pr, size_t *n) {
	if (!pr || !pr->image) return NVRTC_ERROR_INVALID_PROGRAM;
	if (!n) return NVRTC_ERROR_INVALID_INPUT;
	*n = pr->real ? pr->size : 0;
	return 0;
}
int nvrtcGetCUBIN(Prog *pr, char *out) {
	if (!pr || !pr->image) return NVRTC_ERROR_INVALID_PROGRAM;
	if (!out) return NVRTC_ERROR_INVALID_INPUT;
	if (!pr->real) return NVRTC_ERROR_INVALID_INPUT;
	memcpy(out, pr->image, pr->size);
	return 0;
}
