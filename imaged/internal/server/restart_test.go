package server_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"flotilla.dev/imaged/internal/store"
	"flotilla.dev/lib/testutil/registry"
	imagev1 "flotilla.dev/proto/image/v1"
	"go.podman.io/storage"
)

// Images and container layers survive a restart; layers no image or
// container references (a pull killed half-way) are removed at start.
func TestRestartKeepsStoreAndCollectsOrphans(t *testing.T) {
	reg := startRegistry(t, registry.Options{Images: []string{"busybox"}})
	e := newEnv(t, reg, envOpts{})
	ctx := ctxT(t)
	id, err := e.pull(ctx, "busybox", nil)
	must(t, err)
	_, err = e.rootfs.CreateRootfs(ctx, &imagev1.CreateRootfsRequest{ContainerId: "kept", Image: id, PodId: "p"})
	must(t, err)
	m, err := e.rootfs.MountRootfs(ctx, &imagev1.MountRootfsRequest{ContainerId: "kept"})
	must(t, err)
	// Created and mounted in one call, unmounted when imaged stops.
	one, err := e.rootfs.CreateRootfs(ctx, &imagev1.CreateRootfsRequest{ContainerId: "unmounted", Image: id, PodId: "p", Mount: true})
	must(t, err)
	_, err = e.rootfs.UnmountRootfs(ctx, &imagev1.UnmountRootfsRequest{ContainerId: "unmounted"})
	must(t, err)
	layers, _ := e.stored()
	e.stop()

	// What a pull killed after committing a layer leaves behind.
	st, err := store.Open(e.cfg)
	must(t, err)
	img, err := st.Image(id)
	must(t, err)
	for _, parent := range []string{"", img.TopLayer} {
		if _, err := st.CreateLayer("", parent, nil, "", false, nil); err != nil {
			t.Fatal(err)
		}
	}
	// What a crash can leave of a volatile container layer: a layer
	// directory without a record.
	orphan := filepath.Join(e.cfg.Root, e.cfg.StorageDriver, strings.Repeat("ab", 32))
	must(t, os.MkdirAll(filepath.Join(orphan, "diff"), 0o755))
	// The mounted rootfs stays mounted, as for a running container.
	if _, err := st.Shutdown(false); err != nil && !errors.Is(err, storage.ErrLayerUsedByContainer) {
		t.Fatal(err)
	}
	if l, _ := e.stored(); l != layers+2 {
		t.Fatalf("%d layers before restart, want %d", l, layers+2)
	}

	e.start()
	if l, i := e.stored(); l != layers || i != 1 {
		t.Errorf("after restart: %d layers, %d images; want %d, 1", l, i, layers)
	}
	if _, err := os.Stat(orphan); !os.IsNotExist(err) {
		t.Errorf("unrecorded layer directory after restart: %v", err)
	}
	if got := e.status(ctx, "busybox"); got.GetId() != id {
		t.Errorf("image after restart: %v", got)
	}
	// Container layers are volatile (records not fsynced): a restart of
	// imaged still finds them, mounted or not, for sandboxd to reconcile.
	l, err := e.rootfs.ListRootfs(ctx, &imagev1.ListRootfsRequest{})
	must(t, err)
	byID := map[string]*imagev1.Rootfs{}
	for _, r := range l.Rootfs {
		byID[r.ContainerId] = r
	}
	if k, u := byID["kept"], byID["unmounted"]; len(l.Rootfs) != 2 || k.GetPodId() != "p" || k.GetMountPoint() != m.MountPoint ||
		u.GetLayerId() != one.Rootfs.LayerId || u.GetMountPoint() != "" {
		t.Fatalf("rootfs after restart: %v", l.Rootfs)
	}
	m1, err := e.rootfs.CreateRootfs(ctx, &imagev1.CreateRootfsRequest{ContainerId: "unmounted", Image: id, Mount: true})
	must(t, err)
	if _, err := os.Stat(filepath.Join(m1.Rootfs.GetMountPoint(), "bin", "busybox")); err != nil {
		t.Errorf("remounted rootfs after restart: %v", err)
	}
	_, err = e.rootfs.RemoveRootfs(ctx, &imagev1.RemoveRootfsRequest{ContainerId: "unmounted"})
	must(t, err)
	m2, err := e.rootfs.MountRootfs(ctx, &imagev1.MountRootfsRequest{ContainerId: "kept"})
	must(t, err)
	if m2.MountPoint != m.MountPoint {
		t.Errorf("mount point moved: %s -> %s", m.MountPoint, m2.MountPoint)
	}
	_, err = e.rootfs.RemoveRootfs(ctx, &imagev1.RemoveRootfsRequest{ContainerId: "kept"})
	must(t, err)
}

// A reboot empties the run root (a tmpfs on a node): container layers'
// records live there (transient store), so they are gone with it and the
// start-up collection removes their directories; images stay.
func TestRebootDropsContainerLayers(t *testing.T) {
	reg := startRegistry(t, registry.Options{Images: []string{"busybox"}})
	e := newEnv(t, reg, envOpts{})
	ctx := ctxT(t)
	id, err := e.pull(ctx, "busybox", nil)
	must(t, err)
	cr, err := e.rootfs.CreateRootfs(ctx, &imagev1.CreateRootfsRequest{ContainerId: "c1", Image: id, PodId: "p", Mount: true})
	must(t, err)
	layerDir := filepath.Join(e.cfg.Root, e.cfg.StorageDriver, cr.Rootfs.LayerId)
	if _, err := os.Stat(layerDir); err != nil {
		t.Fatal(err)
	}
	e.stop()

	// The reboot: every mount under the test's directory goes, and the
	// run root is empty again.
	dir := filepath.Dir(e.cfg.Root)
	b, err := os.ReadFile("/proc/self/mountinfo")
	must(t, err)
	var mounts []string
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			mounts = append(mounts, f[4])
		}
	}
	for i := len(mounts) - 1; i >= 0; i-- {
		must(t, syscall.Unmount(mounts[i], syscall.MNT_DETACH))
	}
	must(t, os.RemoveAll(e.cfg.RunRoot))

	e.start()
	l, err := e.rootfs.ListRootfs(ctx, &imagev1.ListRootfsRequest{})
	must(t, err)
	if len(l.Rootfs) != 0 {
		t.Errorf("rootfs after reboot: %v", l.Rootfs)
	}
	if _, err := os.Stat(layerDir); !os.IsNotExist(err) {
		t.Errorf("container layer directory after reboot: %v", err)
	}
	if got := e.status(ctx, "busybox"); got.GetId() != id {
		t.Errorf("image after reboot: %v", got)
	}
	// sandboxd's clean-up of a lost container succeeds, and the id can be
	// used again.
	_, err = e.rootfs.RemoveRootfs(ctx, &imagev1.RemoveRootfsRequest{ContainerId: "c1"})
	must(t, err)
	again, err := e.rootfs.CreateRootfs(ctx, &imagev1.CreateRootfsRequest{ContainerId: "c1", Image: id, Mount: true})
	must(t, err)
	if _, err := os.Stat(filepath.Join(again.Rootfs.GetMountPoint(), "bin", "busybox")); err != nil {
		t.Errorf("rootfs created after reboot: %v", err)
	}
	_, err = e.rootfs.RemoveRootfs(ctx, &imagev1.RemoveRootfsRequest{ContainerId: "c1"})
	must(t, err)
}
