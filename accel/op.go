package accel

// OpKind names an operation a Device runs. The Exec validates shapes and
// dtypes, allocates the output and converts mixed-dtype operands before it
// builds an Op, so a device only computes; unless stated otherwise every
// input has the output's dtype.
//
// Every array in an Op handed to a Device is plain: C-contiguous and
// starting at element 0 of its Buffer (Offset 0, Contiguous true), so a
// backend may pass buffers to its kernels as they are. The Exec makes a
// contiguous copy of a view on the device (with OpGather) before it is an
// operand, and writes a result meant for a view through OpScatter.
type OpKind uint8

// The operations a Device may implement.
const (
	// OpBinary: Out = In[0] <Binary> In[1], NumPy-broadcast to Out's shape.
	OpBinary OpKind = iota + 1
	// OpBinaryScalar: Out = In[0] <Binary> Scalar, or Scalar <Binary> In[0]
	// when ScalarFirst.
	OpBinaryScalar
	// OpUnary: Out = <Unary>(In[0]).
	OpUnary
	// OpClip: Out = min(max(In[0], Scalar), Scalar2), NaN propagating.
	OpClip
	// OpReduce: Out = <Reduce> of In[0] along Axis, or of all elements into
	// a 0-d Out when Axis is AllAxes. ArgMax/ArgMin write float64 indices.
	OpReduce
	// OpDot: 0-d Out = sum of In[0][i]*In[1][i] over two equal-length vectors.
	OpDot
	// OpAxpy: Out += Scalar*In[0]; Out is also In[1].
	OpAxpy
	// OpTriad: Out = In[0] + Scalar*In[1].
	OpTriad
	// OpMatmul: Out[..., i, j] = sum_k In[0][..., i, k]*In[1][..., k, j];
	// all three have at least two axes and the leading (batch) axes of the
	// inputs broadcast to Out's.
	OpMatmul
	// OpGather: a strided copy. Out[i0, i1, ...] =
	// In[0].flat[Offset + i0*Strides[0] + i1*Strides[1] + ...]; strides may
	// be zero or negative. Transpose, slicing and indexing use it.
	OpGather
	// OpConcat: Out = In[0], In[1], ... joined along Axis.
	OpConcat
	// OpConvert: Out = In[0] element by element, converted to Out's dtype
	// (In[0] may have either dtype). Copy and AsType use it.
	OpConvert
	// OpScatter: the inverse of OpGather, a strided write.
	// Out.flat[Offset + i0*Strides[0] + i1*Strides[1] + ...] = In[0][i0, i1, ...];
	// the positions are distinct and Out's other elements keep their
	// values. Writes into views use it.
	OpScatter
)

var opKindNames = [...]string{"", "binary", "binary-scalar", "unary", "clip", "reduce", "dot", "axpy", "triad", "matmul", "gather", "concat", "convert", "scatter"}

// String names the operation kind.
func (k OpKind) String() string {
	if int(k) < len(opKindNames) && k != 0 {
		return opKindNames[k]
	}
	return "invalid"
}

// AllAxes as Op.Axis asks a reduction over every element.
const AllAxes = -1 << 31

// Op is one operation handed to a Device's Run. Fields a kind does not use
// are zero.
type Op struct {
	Kind   OpKind
	Binary BinaryOp
	Unary  UnaryOp
	Reduce ReduceOp

	In  []*Array
	Out *Array

	Scalar, Scalar2 float64
	ScalarFirst     bool

	Axis    int
	Offset  int
	Strides []int
}

// work estimates op's cost in elements: multiply-adds for a matrix
// product, the larger of the output's and the first input's size otherwise.
func (op *Op) work() int {
	n := 0
	if op.Out != nil {
		n = op.Out.Size()
	}
	if len(op.In) > 0 && op.In[0] != nil {
		n = max(n, op.In[0].Size())
		if op.Kind == OpMatmul && op.Out != nil {
			if s := op.In[0].shape; len(s) > 0 {
				n = max(n, op.Out.Size()*s[len(s)-1])
			}
		}
	}
	return n
}
