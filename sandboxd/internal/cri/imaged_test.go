package cri

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"flotilla.dev/lib/bus"
	"flotilla.dev/lib/testutil/registry"
	imagev1 "flotilla.dev/proto/image/v1"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const goTags = "containers_image_openpgp,exclude_graphdriver_btrfs,exclude_graphdriver_zfs,containers_image_docker_daemon_stub"

// startImaged runs the real imaged binary on a local test registry and
// pulls images into it.
func startImaged(t *testing.T, images ...string) (imagev1.RootfsServiceClient, runtimeapi.ImageServiceClient) {
	t.Helper()
	reg := registry.StartT(t, registry.Options{Images: []string{"busybox", "pause-3.10"}})
	bin := filepath.Join(filepath.Dir(shimBinary(t)), "imaged")
	if out, err := exec.Command("go", "build", "-tags", goTags, "-o", bin, "flotilla.dev/imaged/cmd/imaged").CombinedOutput(); err != nil {
		t.Fatalf("build imaged: %v\n%s", err, out)
	}
	dir := t.TempDir()
	nats, err := bus.StartEmbedded("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "imaged.sock")
	conn := runDaemon(t, bin, dir, fmt.Sprintf(`[imaged]
socket = %q
nats_url = %q
root = %q
run_root = %q
registries_conf = %q
signature_policy = %q
`, sock, nats.ClientURL(), filepath.Join(dir, "storage"), filepath.Join(dir, "storage-run"), reg.RegistriesConf, reg.PolicyJSON), sock, nats, func() {
		// containers/storage leaves its overlay mounts to the caller.
		for _, m := range mountsUnder(dir) {
			unix.Unmount(m, unix.MNT_DETACH)
		}
	})
	imgs := runtimeapi.NewImageServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, img := range images {
		if _, err := imgs.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: img}}, grpc.WaitForReady(true)); err != nil {
			t.Fatalf("pull %s: %v", img, err)
		}
	}
	return imagev1.NewRootfsServiceClient(conn), imgs
}

func mountsUnder(dir string) []string {
	data, _ := os.ReadFile("/proc/self/mountinfo")
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], dir) {
			out = append([]string{f[4]}, out...)
		}
	}
	return out
}

// TestRealImagesWithImaged runs a crictl-default pod (shared PID namespace:
// the real pause image, catatonit, pulled on demand) and a busybox container
// from the real imaged, and leaves no container layer behind.
func TestRealImagesWithImaged(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	// The pause image is not pulled: sandboxd pulls it through imaged.
	rootfs, images := startImaged(t, "busybox")
	e := newEnvReal(t, nil, rootfs)
	e.images = images
	e.stop()
	e.start()
	ctx := context.Background()
	pcfg := podConfig("real")
	pcfg.Linux.SecurityContext.NamespaceOptions.Pid = runtimeapi.NamespaceMode_POD
	pcfg.LogDirectory = t.TempDir()
	podID := e.runPod(pcfg)
	cfg := ctrConfig("bb", "sh", "-c", "echo from busybox; exec sleep 1000")
	cfg.Image.Image = "busybox"
	cfg.Linux.SecurityContext.NamespaceOptions.Pid = runtimeapi.NamespaceMode_POD
	id := e.create(podID, pcfg, cfg)
	e.startCtr(id)
	if out, _ := e.execSync(id, "cat", "/proc/1/cmdline"); !strings.Contains(out, "catatonit") && !strings.Contains(out, "pause") {
		t.Errorf("pid 1 is %q, not the pause image", out)
	}
	if out, _ := e.execSync(id, "id", "-un", "www-data"); out != "www-data" {
		t.Errorf("the image's /etc/passwd: %q", out)
	}
	// What the container writes shows in its writable layer's usage.
	if _, code := e.execSync(id, "sh", "-c", "head -c 2000000 /dev/zero > /written"); code != 0 {
		t.Fatalf("write in the container: exit %d", code)
	}
	stats, err := e.svc.ContainerStats(ctx, &runtimeapi.ContainerStatsRequest{ContainerId: id})
	if wl := stats.GetStats().GetWritableLayer(); err != nil || wl.GetUsedBytes().GetValue() < 2000000 ||
		wl.GetUsedBytes().GetValue() > 3000000 || wl.GetInodesUsed().GetValue() == 0 || wl.GetFsId().GetMountpoint() == "" {
		t.Errorf("writable layer %v, %v", wl, err)
	}
	ls, err := e.svc.ListContainerStats(ctx, &runtimeapi.ListContainerStatsRequest{})
	if err != nil || len(ls.Stats) != 1 || ls.Stats[0].GetWritableLayer().GetUsedBytes().GetValue() < 2000000 {
		t.Errorf("list stats %v %v", ls, err)
	}
	ps, err := e.svc.PodSandboxStats(ctx, &runtimeapi.PodSandboxStatsRequest{PodSandboxId: podID})
	if cs := ps.GetStats().GetLinux().GetContainers(); err != nil || len(cs) != 1 || cs[0].GetWritableLayer().GetUsedBytes().GetValue() < 2000000 {
		t.Errorf("pod stats %v %v", ps, err)
	}
	lps, err := e.svc.ListPodSandboxStats(ctx, &runtimeapi.ListPodSandboxStatsRequest{})
	if err != nil || len(lps.Stats) != 1 || len(lps.Stats[0].GetLinux().GetContainers()) != 1 ||
		lps.Stats[0].GetLinux().GetContainers()[0].GetWritableLayer().GetUsedBytes().GetValue() < 2000000 {
		t.Errorf("list pod stats %v %v", lps, err)
	}
	st := e.status(id)
	if st.ImageId == "" || st.ImageRef != st.ImageId {
		t.Errorf("image id %q ref %q", st.ImageId, st.ImageRef)
	}
	if _, err := e.svc.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: podID}); err != nil {
		t.Fatal(err)
	}
	list, err := rootfs.ListRootfs(ctx, &imagev1.ListRootfsRequest{})
	if err != nil || len(list.Rootfs) != 0 {
		t.Fatalf("container layers left: %v %v", list, err)
	}
}
