package gpukern

import (
	"fmt"
	"strings"

	"github.com/autonode/autonode/accel"
)

//go:generate go run ./gen -out ops.go

// OpsSource renders the device functions binop and unop from accel's
// operation tables (accel.BinaryOps, accel.UnaryOps): one case per
// operation code, whose body is the operation's Device text. `go generate`
// writes it into ops.go as ElementwiseOps, and a test checks that the two
// agree, so adding an operation to accel's table is all a GPU backend
// needs.
func OpsSource() string {
	var b strings.Builder
	b.WriteString("\nDEVFN T binop(int op, T a, T b) {\n\tswitch (op) {\n")
	for _, op := range accel.BinaryOps() {
		fmt.Fprintf(&b, "\tcase %d: { %s } // %s\n", op.Op, op.Device, op.Name)
	}
	b.WriteString("\t}\n\treturn a;\n}\n\nDEVFN T unop(int op, T v) {\n\tswitch (op) {\n")
	for _, op := range accel.UnaryOps() {
		fmt.Fprintf(&b, "\tcase %d: { %s } // %s\n", op.Op, op.Device, op.Name)
	}
	b.WriteString("\t}\n\treturn v;\n}\n\n")
	return b.String()
}
