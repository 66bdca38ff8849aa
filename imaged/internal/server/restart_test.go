package server_test

import (
	"errors"
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
	if got := e.status(ctx, "busybox"); got.GetId() != id {
		t.Errorf("image after restart: %v", got)
	}
	l, err := e.rootfs.ListRootfs(ctx, &imagev1.ListRootfsRequest{})
	must(t, err)
	if len(l.Rootfs) != 1 || l.Rootfs[0].ContainerId != "kept" || l.Rootfs[0].PodId != "p" {
		t.Fatalf("rootfs after restart: %v", l.Rootfs)
	}
	m2, err := e.rootfs.MountRootfs(ctx, &imagev1.MountRootfsRequest{ContainerId: "kept"})
	must(t, err)
	if m2.MountPoint != m.MountPoint {
		t.Errorf("mount point moved: %s -> %s", m.MountPoint, m2.MountPoint)
	}
	_, err = e.rootfs.RemoveRootfs(ctx, &imagev1.RemoveRootfsRequest{ContainerId: "kept"})
	must(t, err)
}
