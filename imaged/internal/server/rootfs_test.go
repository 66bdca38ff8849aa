package server_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"flotilla.dev/lib/testutil/registry"
	imagev1 "flotilla.dev/proto/image/v1"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestRootfsLifecycle(t *testing.T) {
	reg := startRegistry(t, registry.Options{Images: []string{"busybox"}})
	e := newEnv(t, reg, envOpts{})
	ctx := ctxT(t)
	id, err := e.pull(ctx, "busybox", nil)
	must(t, err)
	imageLayers, _ := e.stored()

	// Not pulled: NotFound; bad ids: InvalidArgument.
	_, err = e.rootfs.CreateRootfs(ctx, &imagev1.CreateRootfsRequest{ContainerId: "c1", Image: "pause:3.10"})
	if status.Code(err) != codes.NotFound {
		t.Errorf("rootfs on a missing image: %v", err)
	}
	for _, bad := range []string{"", "../escape", "a/b"} {
		_, err = e.rootfs.CreateRootfs(ctx, &imagev1.CreateRootfsRequest{ContainerId: bad, Image: "busybox"})
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("container id %q: %v", bad, err)
		}
	}

	cr, err := e.rootfs.CreateRootfs(ctx, &imagev1.CreateRootfsRequest{ContainerId: "c1", Image: "busybox", PodId: "p1", Name: "sleeper"})
	must(t, err)
	// On ext4 the layers' parent is marked for spreading (chattr +T).
	var sfs unix.Statfs_t
	if err := unix.Statfs(e.cfg.Root, &sfs); err == nil && sfs.Type == unix.EXT4_SUPER_MAGIC {
		out, err := exec.Command("lsattr", "-d", filepath.Join(e.cfg.Root, "overlay")).CombinedOutput()
		if attrs, _, _ := strings.Cut(string(out), " "); err != nil || !strings.Contains(attrs, "T") {
			t.Errorf("lsattr of the layers' directory: %q, %v; want the T flag", out, err)
		}
	}
	if cr.Image.GetId() != id || cr.Rootfs.GetImageId() != id || cr.Rootfs.LayerId == "" {
		t.Fatalf("CreateRootfs = %v", cr)
	}
	var cfg struct {
		Config struct{ Cmd []string } `json:"config"`
	}
	must(t, json.Unmarshal(cr.Image.ConfigJson, &cfg))
	if len(cfg.Config.Cmd) == 0 {
		t.Errorf("image config has no Cmd: %s", cr.Image.ConfigJson)
	}
	// Idempotent for the same image; another image for the same id is refused.
	again, err := e.rootfs.CreateRootfs(ctx, &imagev1.CreateRootfsRequest{ContainerId: "c1", Image: id})
	must(t, err)
	if again.Rootfs.LayerId != cr.Rootfs.LayerId {
		t.Errorf("second create made a new layer %s (first %s)", again.Rootfs.LayerId, cr.Rootfs.LayerId)
	}

	m, err := e.rootfs.MountRootfs(ctx, &imagev1.MountRootfsRequest{ContainerId: "c1"})
	must(t, err)
	if _, err := os.Stat(filepath.Join(m.MountPoint, "bin", "busybox")); err != nil {
		t.Fatalf("mounted rootfs lacks /bin/busybox: %v", err)
	}
	// Writes go to the container layer, not to the image.
	must(t, os.WriteFile(filepath.Join(m.MountPoint, "written"), []byte("x"), 0o644))
	c2, err := e.rootfs.CreateRootfs(ctx, &imagev1.CreateRootfsRequest{ContainerId: "c2", Image: "busybox"})
	must(t, err)
	m2, err := e.rootfs.MountRootfs(ctx, &imagev1.MountRootfsRequest{ContainerId: "c2"})
	must(t, err)
	if _, err := os.Stat(filepath.Join(m2.MountPoint, "written")); !os.IsNotExist(err) {
		t.Errorf("a write in c1 shows in c2: %v", err)
	}

	l, err := e.rootfs.ListRootfs(ctx, &imagev1.ListRootfsRequest{})
	must(t, err)
	byID := map[string]*imagev1.Rootfs{}
	for _, r := range l.Rootfs {
		byID[r.ContainerId] = r
	}
	if r := byID["c1"]; len(l.Rootfs) != 2 || r.PodId != "p1" || r.Name != "sleeper" || r.MountPoint != m.MountPoint || byID["c2"].LayerId != c2.Rootfs.LayerId {
		t.Errorf("ListRootfs = %v", l.Rootfs)
	}

	// Mounting again (sandboxd after a restart) returns the same path, and
	// one unmount still unmounts.
	again2, err := e.rootfs.MountRootfs(ctx, &imagev1.MountRootfsRequest{ContainerId: "c1"})
	must(t, err)
	if again2.MountPoint != m.MountPoint {
		t.Errorf("second mount at %s, first at %s", again2.MountPoint, m.MountPoint)
	}
	_, err = e.rootfs.UnmountRootfs(ctx, &imagev1.UnmountRootfsRequest{ContainerId: "c1"})
	must(t, err)
	_, err = e.rootfs.UnmountRootfs(ctx, &imagev1.UnmountRootfsRequest{ContainerId: "c1"})
	must(t, err)
	if _, err := os.Stat(filepath.Join(m.MountPoint, "bin", "busybox")); err == nil {
		t.Error("still mounted after UnmountRootfs")
	}
	// Remounting shows the earlier write (the layer persists until removed).
	m, err = e.rootfs.MountRootfs(ctx, &imagev1.MountRootfsRequest{ContainerId: "c1"})
	must(t, err)
	if _, err := os.Stat(filepath.Join(m.MountPoint, "written")); err != nil {
		t.Errorf("write lost across unmount: %v", err)
	}

	// Remove unmounts; removing twice succeeds.
	for _, c := range []string{"c1", "c2", "c1", "never-created"} {
		_, err = e.rootfs.RemoveRootfs(ctx, &imagev1.RemoveRootfsRequest{ContainerId: c})
		must(t, err)
	}
	_, err = e.rootfs.UnmountRootfs(ctx, &imagev1.UnmountRootfsRequest{ContainerId: "never-created"})
	must(t, err)
	_, err = e.rootfs.MountRootfs(ctx, &imagev1.MountRootfsRequest{ContainerId: "c1"})
	if status.Code(err) != codes.NotFound {
		t.Errorf("mount of a removed rootfs: %v", err)
	}
	l, err = e.rootfs.ListRootfs(ctx, &imagev1.ListRootfsRequest{})
	must(t, err)
	if len(l.Rootfs) != 0 {
		t.Errorf("ListRootfs after removal = %v", l.Rootfs)
	}
	if layers, _ := e.stored(); layers != imageLayers {
		t.Errorf("%d layers stored, want the image's %d", layers, imageLayers)
	}
}

// CreateRootfs with mount creates and mounts in one call (what sandboxd's
// CreateContainer does); the container's records are volatile (run root, no
// fsync) but its overlay is not mounted "volatile".
func TestRootfsCreateWithMount(t *testing.T) {
	reg := startRegistry(t, registry.Options{Images: []string{"busybox"}})
	e := newEnv(t, reg, envOpts{})
	ctx := ctxT(t)
	_, err := e.pull(ctx, "busybox", nil)
	must(t, err)

	req := &imagev1.CreateRootfsRequest{ContainerId: "c1", Image: "busybox", PodId: "p1", Name: "one", Mount: true}
	cr, err := e.rootfs.CreateRootfs(ctx, req)
	must(t, err)
	mp := cr.Rootfs.GetMountPoint()
	if mp == "" || len(cr.Image.GetConfigJson()) == 0 {
		t.Fatalf("CreateRootfs with mount = %v", cr)
	}
	if _, err := os.Stat(filepath.Join(mp, "bin", "busybox")); err != nil {
		t.Fatalf("mounted rootfs lacks /bin/busybox: %v", err)
	}
	// Repeating it (sandboxd retrying) returns the same layer and mount.
	again, err := e.rootfs.CreateRootfs(ctx, req)
	must(t, err)
	if again.Rootfs.GetMountPoint() != mp || again.Rootfs.LayerId != cr.Rootfs.LayerId {
		t.Errorf("repeated create: %v, first %v", again.Rootfs, cr.Rootfs)
	}
	// Without mount, an existing mounted layer reports its mount point.
	plain, err := e.rootfs.CreateRootfs(ctx, &imagev1.CreateRootfsRequest{ContainerId: "c1", Image: "busybox"})
	must(t, err)
	if plain.Rootfs.GetMountPoint() != mp {
		t.Errorf("create without mount reports mount point %q, want %q", plain.Rootfs.GetMountPoint(), mp)
	}
	l, err := e.rootfs.ListRootfs(ctx, &imagev1.ListRootfsRequest{})
	must(t, err)
	if len(l.Rootfs) != 1 || l.Rootfs[0].MountPoint != mp || l.Rootfs[0].PodId != "p1" {
		t.Errorf("ListRootfs = %v", l.Rootfs)
	}

	// The record is in the volatile file in the run root; the overlay is
	// "volatile" too (an unmount does not sync the graph root's file
	// system). TestRootfsLifecycle mounts again after an unmount, which
	// c/storage must allow by removing the kernel's incompat/volatile.
	vol, err := os.ReadFile(filepath.Join(e.cfg.RunRoot, e.cfg.StorageDriver+"-containers", "volatile-containers.json"))
	must(t, err)
	if !strings.Contains(string(vol), `"c1"`) {
		t.Errorf("volatile-containers.json lacks c1: %s", vol)
	}
	if opts := mountOptions(t, mp); !strings.Contains(opts, "volatile") {
		t.Errorf("overlay at %s mounted with %q", mp, opts)
	}

	// Mounted once: one unmount unmounts.
	_, err = e.rootfs.UnmountRootfs(ctx, &imagev1.UnmountRootfsRequest{ContainerId: "c1"})
	must(t, err)
	if _, err := os.Stat(filepath.Join(mp, "bin", "busybox")); err == nil {
		t.Error("still mounted after one UnmountRootfs")
	}
	_, err = e.rootfs.RemoveRootfs(ctx, &imagev1.RemoveRootfsRequest{ContainerId: "c1"})
	must(t, err)

	// A missing image creates nothing.
	_, err = e.rootfs.CreateRootfs(ctx, &imagev1.CreateRootfsRequest{ContainerId: "c2", Image: "pause:3.10", Mount: true})
	if status.Code(err) != codes.NotFound {
		t.Errorf("create with mount on a missing image: %v", err)
	}
	l, err = e.rootfs.ListRootfs(ctx, &imagev1.ListRootfsRequest{})
	must(t, err)
	if len(l.Rootfs) != 0 {
		t.Errorf("ListRootfs after removal = %v", l.Rootfs)
	}
}

// mountOptions returns the super options of the mount at dir, "" if none.
func mountOptions(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	must(t, err)
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && f[4] == dir {
			return f[len(f)-1]
		}
	}
	return ""
}

// RootfsUsage counts what a container wrote into its layer, not the image.
func TestRootfsUsage(t *testing.T) {
	reg := startRegistry(t, registry.Options{Images: []string{"busybox"}})
	e := newEnv(t, reg, envOpts{})
	ctx := ctxT(t)
	_, err := e.pull(ctx, "busybox", nil)
	must(t, err)
	cr, err := e.rootfs.CreateRootfs(ctx, &imagev1.CreateRootfsRequest{ContainerId: "u1", Image: "busybox", Mount: true})
	must(t, err)
	defer e.rootfs.RemoveRootfs(ctx, &imagev1.RemoveRootfsRequest{ContainerId: "u1"})
	usage := func() *imagev1.RootfsUsage {
		t.Helper()
		r, err := e.rootfs.RootfsUsage(ctx, &imagev1.RootfsUsageRequest{ContainerIds: []string{"u1", "unknown"}})
		must(t, err)
		if len(r.Usage) != 1 || r.Usage[0].ContainerId != "u1" || r.Mountpoint != e.cfg.Root {
			t.Fatalf("RootfsUsage = %v (graph root %s)", r, e.cfg.Root)
		}
		return r.Usage[0]
	}
	before := usage()
	if before.UsedBytes > 64<<10 {
		t.Errorf("a fresh layer holds %d bytes: the image is counted", before.UsedBytes)
	}
	must(t, os.WriteFile(filepath.Join(cr.Rootfs.GetMountPoint(), "big"), make([]byte, 3_000_000), 0o644))
	after := usage()
	if after.UsedBytes < before.UsedBytes+3_000_000 || after.InodesUsed < before.InodesUsed+1 {
		t.Errorf("usage after writing 3 MB: %v, before %v", after, before)
	}
	if _, err := e.rootfs.RootfsUsage(ctx, &imagev1.RootfsUsageRequest{ContainerIds: []string{"../x"}}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("bad id: %v", err)
	}
}
