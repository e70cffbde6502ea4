module github.com/gorun-hpc/gorun

go 1.26.0

require (
	github.com/hashicorp/go-multierror v1.1.1
	github.com/klauspost/cpuid/v2 v2.4.2
	golang.org/x/sys v0.50.0
)

require github.com/hashicorp/errwrap v1.0.0 // indirect
