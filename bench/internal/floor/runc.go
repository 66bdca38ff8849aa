package floor

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"flotilla.dev/bench/internal/report"
	"flotilla.dev/bench/internal/stats"
)

// runcFloor times `runc create` + `runc start` of a busybox `sleep` bundle
// o.N times, then `runc delete --force` of each.
func runcFloor(ctx context.Context, o Options, tmp string, res *report.Result) error {
	rootfs, err := filepath.Abs(o.Rootfs)
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(rootfs, "bin", "sleep")); err != nil {
		return fmt.Errorf("rootfs %s has no bin/sleep: %w", rootfs, err)
	}
	state := filepath.Join(tmp, "runc")
	spec, err := baseSpec(ctx, o.Runc, tmp)
	if err != nil {
		return err
	}
	out, err := os.Create(filepath.Join(tmp, "runc.out"))
	if err != nil {
		return err
	}
	defer out.Close()
	runc := func(args ...string) error { return runRunc(o.Runc, state, out, args...) }
	var created []string
	defer func() { // also after a failure or an interrupt
		for _, id := range created {
			runc("delete", "--force", id)
		}
	}()
	var create, start, total, teardown stats.Recorder
	tag := fmt.Sprintf("%d", os.Getpid())
	for i := 0; i < o.N && ctx.Err() == nil; i++ {
		id := fmt.Sprintf("flotbench-floor-%s-%d", tag, i)
		bundle := filepath.Join(tmp, "bundles", id)
		if err := writeSpec(spec, bundle, rootfs, id); err != nil {
			return err
		}
		t0 := time.Now()
		err := runc("create", "--bundle", bundle, id)
		d0 := time.Since(t0)
		created = append(created, id)
		if err != nil {
			create.Fail(err)
			total.Fail(err)
			continue
		}
		create.Add(d0)
		t1 := time.Now()
		err = runc("start", id)
		d1 := time.Since(t1)
		start.Observe(d1, err)
		total.Observe(d0+d1, err)
	}
	// runc exec of `echo hi` in a running container: what an ExecSync
	// through runc costs at least.
	var execRec stats.Recorder
	if len(created) > 0 && start.Summary().N > 0 {
		for i := 0; i < o.N && ctx.Err() == nil; i++ {
			t := time.Now()
			err := runc("exec", created[len(created)-1], "echo", "hi")
			d := time.Since(t)
			if b, _ := os.ReadFile(out.Name()); err == nil && string(b) != "hi\n" {
				err = fmt.Errorf("runc exec printed %q, want \"hi\\n\"", b)
			}
			execRec.Observe(d, err)
		}
	}
	for _, id := range created {
		t := time.Now()
		err := runc("delete", "--force", id)
		teardown.Observe(time.Since(t), err)
	}
	created = nil
	res.Ops["floor.runc_create"] = create.Summary()
	res.Ops["floor.runc_start"] = start.Summary()
	res.Ops["floor.runc_total"] = total.Summary()
	res.Ops["floor.runc_teardown"] = teardown.Summary()
	res.Ops["floor.runc_exec"] = execRec.Summary()
	return nil
}

// runRunc runs `runc --root state args...` with its output in out (a file,
// not a pipe: the container inherits runc's stdio and would hold a pipe
// open, and Wait would wait for it), which it returns in the error.
func runRunc(runc, state string, out *os.File, args ...string) error {
	cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(cctx, runc, append([]string{"--root", state}, args...)...)
	out.Truncate(0)
	out.Seek(0, 0)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		b, _ := os.ReadFile(out.Name())
		return fmt.Errorf("runc %s: %w: %s", args[0], err, bytes.TrimSpace(b))
	}
	return nil
}

// baseSpec is runc's own default spec (`runc spec`).
func baseSpec(ctx context.Context, runc, tmp string) (map[string]any, error) {
	dir := filepath.Join(tmp, "spec")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if out, err := exec.CommandContext(ctx, runc, "spec", "--bundle", dir).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("runc spec: %w: %s", err, out)
	}
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, err
	}
	var spec map[string]any
	return spec, json.Unmarshal(b, &spec)
}

// writeSpec writes the bundle's config.json: `sleep 3600` without a
// terminal on the shared read-only rootfs, in its own cgroup.
func writeSpec(spec map[string]any, bundle, rootfs, id string) error {
	if err := os.MkdirAll(bundle, 0o755); err != nil {
		return err
	}
	proc := spec["process"].(map[string]any)
	proc["terminal"] = false
	proc["args"] = []string{"sleep", "3600"}
	spec["root"] = map[string]any{"path": rootfs, "readonly": true}
	spec["hostname"] = "floor"
	linux := spec["linux"].(map[string]any)
	linux["cgroupsPath"] = "/" + id
	b, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(bundle, "config.json"), b, 0o644)
}
