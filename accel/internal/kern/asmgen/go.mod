module github.com/autonode/autonode/accel/internal/kern/asmgen

go 1.26.0
