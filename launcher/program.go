package launcher

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// ResolveProgram turns the PROGRAM of a gorun command line into an
// executable's path:
//
//   - a .go file, or a directory (a Go package), is built once, like go run
//     does, with "go build -o" into a private temporary directory that
//     cleanup removes;
//   - a name without a slash is looked up in PATH (a directory or file of
//     that name in the current directory is used if PATH has none);
//   - anything else must be an executable file.
//
// cleanup is never nil and must be called once the program has run (a
// no-op unless something was built). The build runs under ctx, in the
// source's own directory so its module is used, and its compiler output is
// part of the error.
func ResolveProgram(ctx context.Context, program string) (path string, cleanup func(), err error) {
	noop := func() {}
	if program == "" {
		return "", noop, errors.New("no program given")
	}
	if !strings.ContainsRune(program, '/') && !strings.HasSuffix(program, ".go") && program != "." && program != ".." {
		if p, err := exec.LookPath(program); err == nil {
			if p, err = filepath.Abs(p); err == nil {
				return p, noop, nil
			}
		}
	}
	abs, err := filepath.Abs(program)
	if err != nil {
		return "", noop, fmt.Errorf("program %s: %w", program, err)
	}
	info, err := os.Stat(abs)
	switch {
	case err != nil:
		return "", noop, fmt.Errorf("program %s: %w", program, err)
	case info.IsDir():
		return build(ctx, program, abs, ".", filepath.Base(abs))
	case strings.HasSuffix(abs, ".go") && info.Mode().IsRegular():
		return build(ctx, program, filepath.Dir(abs), filepath.Base(abs), strings.TrimSuffix(filepath.Base(abs), ".go"))
	case !info.Mode().IsRegular() || info.Mode().Perm()&0o111 == 0:
		return "", noop, fmt.Errorf("program %s: not an executable file (%v)", program, info.Mode())
	}
	return abs, noop, nil
}

// build runs "go build -o <tmp>/<name> <target>" in dir.
func build(ctx context.Context, program, dir, target, name string) (string, func(), error) {
	noop := func() {}
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
		if _, serr := os.Stat(goTool); serr != nil {
			return "", noop, fmt.Errorf("build %s: no go command in PATH: %w", program, err)
		}
	}
	tmp, err := os.MkdirTemp("", "gorun-build-")
	if err != nil {
		return "", noop, fmt.Errorf("build %s: %w", program, err)
	}
	cleanup := func() { os.RemoveAll(tmp) }
	out := filepath.Join(tmp, name)
	cmd := exec.CommandContext(ctx, goTool, "build", "-o", out, target)
	cmd.Dir = dir
	var msgs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &msgs, &msgs
	if err := cmd.Run(); err != nil {
		cleanup()
		if ctx.Err() != nil {
			err = context.Cause(ctx)
		}
		return "", noop, fmt.Errorf("build %s: %w\n%s", program, err, strings.TrimSpace(msgs.String()))
	}
	if info, err := os.Stat(out); err != nil || !info.Mode().IsRegular() || info.Mode().Perm()&0o111 == 0 {
		cleanup()
		return "", noop, fmt.Errorf("build %s: no executable produced (not a main package?)", program)
	}
	return out, cleanup, nil
}
