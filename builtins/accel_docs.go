package builtins

import (
	"strings"

	"github.com/autonode/autonode/accel"
)

// The documentation of the accel module and the array type, merged into
// Docs. The element-wise functions' entries come from accel's operation
// table (BinaryOps, UnaryOps), like the functions themselves.
func init() {
	for k, v := range accelDocs {
		docs[k] = v
	}
	for _, op := range accel.BinaryOps() {
		docs["accel."+op.Name] = binaryDoc(op)
	}
	for _, op := range accel.UnaryOps() {
		docs["accel."+op.Name] = unaryDoc(op)
	}
}

func binaryDoc(op accel.BinaryInfo) string {
	var b strings.Builder
	b.WriteString(op.Doc + "\n\naccel." + op.Name + "(x, y, out=None) -> array\n\n")
	b.WriteString("x and y are arrays, lists or numbers; shapes broadcast as in NumPy; mixed dtypes compute in float64 (a number keeps the array's dtype).")
	if op.Symbol != "" {
		b.WriteString(" Same as x " + op.Symbol + " y.")
	}
	b.WriteString(" out= writes the result into an existing array of the result's shape and dtype (it may be x or y) and returns it.")
	if op.Detail != "" {
		b.WriteString(" " + op.Detail)
	}
	return b.String()
}

func unaryDoc(op accel.UnaryInfo) string {
	var b strings.Builder
	b.WriteString(op.Doc + "\n\naccel." + op.Name + "(x, out=None) -> array\n\n")
	b.WriteString("x is an array, a list or a number. out= writes the result into an existing array of x's shape and dtype (it may be x) and returns it.")
	if op.Detail != "" {
		b.WriteString(" " + op.Detail)
	}
	return b.String()
}

var accelDocs = map[string]string{
	"accel": `Dense float64/float32 arrays and kernels on the thread's device.

Arrays are made by array, zeros, ones, full, arange, linspace, eye, rand,
randn and load_npy, combined with + - * / (arrays and numbers,
broadcasting as NumPy), element-wise functions (add, subtract, multiply,
divide, power, maximum, minimum, negative, abs, exp, log, sqrt, tanh,
sigmoid, relu, clip; each takes out= to write into an existing array),
reductions (sum, mean, min, max, argmin, argmax, norm; axis= and
keepdims=), dot, matmul (Starlark has no @; out= too), transpose,
reshape, concatenate, stack, astype, copy, copyto and tolist. save and
load_npy write and read NumPy's .npy files (load is a Starlark keyword,
so accel.load(p) does not parse). Indexing, slicing, transpose and
reshape give views that share the array's elements (copy() gives an
independent one). Inside a thread body arrays live on the thread's
device, are charged to its memory budget (metadata.max_memory_mb), and
stop at its TTL. Functions accept arrays, nested lists of numbers, and
numbers. See "array" for the array type.`,

	"array": `An accel array (type "array").

Attributes: shape (tuple), dtype ("float64" or "float32"), size, ndim, T
(transpose), device, nbytes. Methods: tolist, item, reshape, flatten,
astype, copy, fill, transpose, dot, matmul, clip, sum, mean, min, max,
argmin, argmax, norm. a[i] indexes the first axis (a float for a 1-D
array), a[i, j] several, a[lo:hi:step] slices the first axis. Indexing,
slicing, a.T and reshape give views sharing a's elements, as in NumPy:
writing one changes the other; a.copy() is independent. a[i] = v and
a[i, j] = v write into the array (v is a number, an array or a list,
broadcast to the indexed part), so a[i] += v works too; out=,
accel.copyto, a.fill, accel.axpy and accel.triad write in place as well.
Frozen arrays (shared between threads, or globals of a loaded module) and
views of them refuse every write. len(a) and for x in a follow the first
axis. Operators + - * / and unary - work with arrays, numbers and lists
(x += y makes a new array: Starlark has no in-place operators).
json.encode(a) writes nested lists; a thread result that is an array is
stored as a summary {shape, dtype, size, sum, mean, values (small arrays)}.`,

	"accel.array":       "Make an array from nested lists of numbers.\n\naccel.array(data, dtype=\"float64\") -> array\n\ndata is a number, a (nested, regular) list or tuple of numbers, or an array (converted to dtype).",
	"accel.zeros":       "Make an array of zeros.\n\naccel.zeros(shape, dtype=\"float64\") -> array\n\nshape is an int or a tuple of ints.",
	"accel.ones":        "Make an array of ones.\n\naccel.ones(shape, dtype=\"float64\") -> array",
	"accel.full":        "Make an array with every element set to value.\n\naccel.full(shape, value, dtype=\"float64\") -> array",
	"accel.arange":      "Make evenly spaced values in [start, stop).\n\naccel.arange(start, stop=None, step=1, dtype=\"float64\") -> array\n\nWith one argument, it is the stop and start is 0, as Python's range.",
	"accel.linspace":    "Make num evenly spaced values from start to stop, both included.\n\naccel.linspace(start, stop, num=50, dtype=\"float64\") -> array",
	"accel.eye":         "Make an identity matrix.\n\naccel.eye(n, m=None, dtype=\"float64\") -> array\n\nn rows, m columns (default n), ones on the main diagonal.",
	"accel.rand":        "Make uniform random numbers in [0, 1).\n\naccel.rand(shape, seed=None, dtype=\"float64\") -> array\n\nThe same seed (a non-negative int) always gives the same numbers; None draws a random seed.",
	"accel.randn":       "Make standard normal random numbers.\n\naccel.randn(shape, seed=None, dtype=\"float64\") -> array\n\nMean 0, variance 1; seed as for accel.rand.",
	"accel.clip":        "Limit values to [lo, hi].\n\naccel.clip(a, lo=None, hi=None, out=None) -> array\n\nNone means no bound; lo must not exceed hi. out= as for the element-wise functions.",
	"accel.sum":         "Sum of the elements.\n\naccel.sum(a, axis=None, keepdims=False) -> float or array\n\nWithout axis, a float; with axis, an array with that axis removed. keepdims=True keeps the reduced axes with length 1 (an array either way).",
	"accel.mean":        "Mean of the elements.\n\naccel.mean(a, axis=None, keepdims=False) -> float or array\n\nThe mean of an empty array is nan.",
	"accel.min":         "Smallest element (NaN propagates).\n\naccel.min(a, axis=None, keepdims=False) -> float or array\n\nAn empty array is an error.",
	"accel.max":         "Largest element (NaN propagates).\n\naccel.max(a, axis=None, keepdims=False) -> float or array\n\nAn empty array is an error.",
	"accel.argmin":      "Index of the first smallest element.\n\naccel.argmin(a, axis=None, keepdims=False) -> int or array\n\nWithout axis, the flat row-major index.",
	"accel.argmax":      "Index of the first largest element.\n\naccel.argmax(a, axis=None, keepdims=False) -> int or array\n\nWithout axis, the flat row-major index.",
	"accel.norm":        "Euclidean (Frobenius) norm.\n\naccel.norm(a, axis=None, keepdims=False) -> float or array",
	"accel.dot":         "Inner product of two vectors.\n\naccel.dot(a, b) -> float\n\nBoth 1-D of equal length; use matmul for matrices.",
	"accel.matmul":      "Matrix product a @ b.\n\naccel.matmul(a, b, out=None) -> array\n\nNumPy's rules: (m,k)@(k,n) -> (m,n); stacks of matrices broadcast; a 1-D operand is a row (left) or column (right) vector. out= writes the product into an existing array of its shape and dtype.",
	"accel.transpose":   "Permute the axes (a view).\n\naccel.transpose(a, axes=None) -> array\n\nWithout axes, reverses them (same as a.T). The result shares a's elements.",
	"accel.reshape":     "Give the elements a new shape (a view).\n\naccel.reshape(a, shape) -> array\n\nOne dimension may be -1, inferred from the size. The result shares a's elements (a transposed a that cannot be viewed so is copied, as in NumPy).",
	"accel.astype":      "Convert to another dtype (copies).\n\naccel.astype(a, dtype) -> array",
	"accel.copy":        "Copy an array.\n\naccel.copy(a) -> array\n\nThe copy shares nothing with a and is not frozen: write it in place.",
	"accel.copyto":      "Write values into an array, in place.\n\naccel.copyto(dst, src)\n\nsrc (an array, a list or a number) broadcasts to dst's shape and is converted to dst's dtype; dst may be a view (copyto(a[0], 1) sets a row). A frozen dst is refused.",
	"accel.tolist":      "Convert to nested lists of floats.\n\naccel.tolist(a) -> list or float\n\nA 0-d array gives a float.",
	"accel.concatenate": "Join arrays along an existing axis.\n\naccel.concatenate(arrays, axis=0) -> array\n\nOther axes must match; mixed dtypes give float64.",
	"accel.stack":       "Join arrays of one shape along a new axis.\n\naccel.stack(arrays, axis=0) -> array",
	"accel.axpy":        "Update y in place: y += alpha*x.\n\naccel.axpy(alpha, x, y)\n\nx and y have the same shape and dtype. A frozen y (shared between threads) is refused: work on y.copy().",
	"accel.triad":       "Compute dst = b + s*c in place (the STREAM triad).\n\naccel.triad(dst, b, c, s)\n\nAll three have the same shape and dtype. A frozen dst is refused.",
	"accel.devices":     "List the compute devices AutoNode knows.\n\naccel.devices() -> list of struct(name, kind, found, reason, detail)\n\nThe CPU is always found; a GPU backend that was not found says why.",
	"accel.save":        "Write an array to a NumPy .npy file.\n\naccel.save(path, a)\n\nVersion 1.0 of the format (2.0 for a very long header), dtype '<f8' or '<f4', C order: numpy.load reads it. The file is replaced atomically (written beside it, then renamed). Host access: refused in sandboxed thread bodies, like the host module.",
	"accel.save_npy":    "Write an array to a NumPy .npy file (the same as accel.save).\n\naccel.save_npy(path, a)",
	"accel.load_npy":    "Read an array from a NumPy .npy file (accel.load, callable).\n\naccel.load_npy(path) -> array\n\nload is a keyword in Starlark, so accel.load(path) does not parse; accel.load_npy(path) and getattr(accel, \"load\")(path) do the same. See accel.load.",
	"accel.load":        "Read an array from a NumPy .npy file.\n\naccel.load_npy(path) -> array\n\nStarlark reserves the word load, so call it as accel.load_npy(path) (or getattr(accel, \"load\")(path)). Format versions 1.0, 2.0 and 3.0; dtype float64 or float32, little- or big-endian; C or Fortran order (a Fortran file gives a transposed view). Other dtypes are refused with a message saying what the file holds. The array is charged to the memory budget before it is read. Host access: refused in sandboxed thread bodies, like the host module.",

	"array.tolist":    "Convert to nested lists of floats.\n\na.tolist() -> list or float",
	"array.item":      "Return the only element of a one-element array.\n\na.item() -> float",
	"array.reshape":   "Give the elements a new shape (a view).\n\na.reshape(*shape) -> array\n\na.reshape(2, 3) and a.reshape((2, 3)) are the same; one dimension may be -1.",
	"array.flatten":   "Return a 1-D copy.\n\na.flatten() -> array",
	"array.astype":    "Convert to another dtype (copies).\n\na.astype(dtype) -> array",
	"array.copy":      "Copy the array.\n\na.copy() -> array\n\nThe copy shares nothing with a.",
	"array.fill":      "Set every element to value, in place.\n\na.fill(value)\n\nA frozen array is refused.",
	"array.transpose": "Permute the axes (a view).\n\na.transpose(*axes) -> array\n\nWithout axes, reverses them, as a.T.",
	"array.dot":       "Inner product with another vector.\n\na.dot(b) -> float",
	"array.matmul":    "Matrix product with b.\n\na.matmul(b, out=None) -> array",
	"array.clip":      "Limit values to [lo, hi].\n\na.clip(lo=None, hi=None, out=None) -> array",
	"array.sum":       "Sum of the elements.\n\na.sum(axis=None, keepdims=False) -> float or array",
	"array.mean":      "Mean of the elements.\n\na.mean(axis=None, keepdims=False) -> float or array",
	"array.min":       "Smallest element.\n\na.min(axis=None, keepdims=False) -> float or array",
	"array.max":       "Largest element.\n\na.max(axis=None, keepdims=False) -> float or array",
	"array.argmin":    "Index of the first smallest element.\n\na.argmin(axis=None, keepdims=False) -> int or array",
	"array.argmax":    "Index of the first largest element.\n\na.argmax(axis=None, keepdims=False) -> int or array",
	"array.norm":      "Euclidean (Frobenius) norm.\n\na.norm(axis=None, keepdims=False) -> float or array",
}
