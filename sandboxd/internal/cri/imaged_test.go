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
	flog "flotilla.dev/lib/log"
	"flotilla.dev/lib/testutil/registry"
	imagev1 "flotilla.dev/proto/image/v1"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
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

// newEnvImaged is an env on a real imaged holding busybox, whose image
// service sandboxd uses (it pulls the pause image through it).
func newEnvImaged(t *testing.T) (*env, imagev1.RootfsServiceClient, runtimeapi.ImageServiceClient) {
	t.Helper()
	rootfs, images := startImaged(t, "busybox")
	e := newEnvReal(t, nil, rootfs)
	e.images = images
	e.stop() // started again with the image service
	e.start()
	return e, rootfs, images
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
	e, rootfs, _ := newEnvImaged(t)
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

// TestImageVolumesWithImaged mounts images as volumes (Kubernetes'
// ImageVolume): the whole image and a sub-path of it, read-only but
// executable, reported in ContainerStatus with the image id; kept across a
// sandboxd restart; refused with InvalidArgument or NotFound, leaving
// nothing, when writable, escaping, missing or of an unknown image; and
// removed with the container.
func TestImageVolumesWithImaged(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	e, rootfs, images := newEnvImaged(t)
	ctx := context.Background()
	img, err := images.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: "busybox"}})
	if err != nil || img.GetImage().GetId() == "" {
		t.Fatalf("image status: %v %v", img, err)
	}
	imageID := img.GetImage().GetId()
	pcfg := podConfig("vol")
	pcfg.LogDirectory = t.TempDir()
	podID := e.runPod(pcfg)
	layers := func() []string {
		list, err := rootfs.ListRootfs(ctx, &imagev1.ListRootfsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, r := range list.GetRootfs() {
			ids = append(ids, r.GetContainerId())
		}
		return ids
	}
	volume := func(path, sub string) *runtimeapi.Mount {
		return &runtimeapi.Mount{ContainerPath: path, Readonly: true, Image: &runtimeapi.ImageSpec{Image: "busybox"}, ImageSubPath: sub}
	}

	// Refused, changing nothing.
	for _, c := range []struct {
		name  string
		mount *runtimeapi.Mount
		want  codes.Code // what the kubelet gets
	}{
		{"writable", &runtimeapi.Mount{ContainerPath: "/mnt/w", Image: &runtimeapi.ImageSpec{Image: "busybox"}}, codes.InvalidArgument},
		{"escaping sub-path", volume("/mnt/x", "../../etc"), codes.InvalidArgument},
		{"absolute sub-path", volume("/mnt/x", "/etc"), codes.InvalidArgument},
		{"missing sub-path", volume("/mnt/x", "not-existing"), codes.InvalidArgument},
		{"unknown image", &runtimeapi.Mount{ContainerPath: "/mnt/x", Readonly: true, Image: &runtimeapi.ImageSpec{Image: "docker.io/library/nope:1"}}, codes.NotFound},
	} {
		cfg := ctrConfig("bad-"+strings.ReplaceAll(c.name, " ", "-"), "true")
		cfg.Image.Image = "busybox"
		cfg.Mounts = []*runtimeapi.Mount{c.mount}
		_, err := e.svc.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: cfg, SandboxConfig: pcfg})
		if code := status.Code(flog.ToStatus(err)); code != c.want {
			t.Errorf("%s image volume: %v, want %v", c.name, err, c.want)
		}
	}
	if n, l := len(e.svc.listContainers(nil)), layers(); n != 0 || len(l) != 0 {
		t.Fatalf("after refused creates: %d containers, layers %v", n, l)
	}

	cfg := ctrConfig("vol", "sleep", "1000")
	cfg.Image.Image = "busybox"
	cfg.Mounts = []*runtimeapi.Mount{volume("/mnt/image", ""), volume("/mnt/etc", "etc")}
	id := e.create(podID, pcfg, cfg)
	e.startCtr(id)
	if l := layers(); len(l) != 3 {
		t.Errorf("layers %v: want the container's and two image volumes'", l)
	}
	check := func(when string) {
		t.Helper()
		if _, code := e.execSync(id, "ls", "/mnt/image/bin/sh"); code != 0 {
			t.Errorf("%s: the image is not at /mnt/image", when)
		}
		if out, code := e.execSync(id, "/mnt/image/bin/busybox", "echo", "ran"); code != 0 || out != "ran" {
			t.Errorf("%s: running a binary of the image volume: %q, exit %d", when, out, code)
		}
		if out, _ := e.execSync(id, "grep", "^www-data:", "/mnt/etc/passwd"); !strings.HasPrefix(out, "www-data:") {
			t.Errorf("%s: the sub-path etc is not at /mnt/etc: %q", when, out)
		}
		if _, code := e.execSync(id, "ls", "/mnt/etc/etc"); code == 0 {
			t.Errorf("%s: /mnt/etc holds the whole image, not its sub-path", when)
		}
		if _, code := e.execSync(id, "touch", "/mnt/image/written"); code == 0 {
			t.Errorf("%s: the image volume is writable", when)
		}
	}
	check("started")
	var found int
	for _, m := range e.status(id).GetMounts() {
		if strings.HasPrefix(m.GetContainerPath(), "/mnt/") {
			found++
			if m.GetImage().GetImage() != "busybox" || m.GetImage().GetImageRef() != imageID {
				t.Errorf("status mount %s: image %v, want busybox with image_ref %s", m.GetContainerPath(), m.GetImage(), imageID)
			}
		}
	}
	if found != 2 {
		t.Errorf("status lists %d image volumes, want 2", found)
	}

	// A restart of sandboxd keeps the volumes of the container it recovers.
	e.stop()
	e.start()
	if l := layers(); len(l) != 3 {
		t.Errorf("layers after a restart %v", l)
	}
	check("after a restart")

	if _, err := e.svc.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: podID}); err != nil {
		t.Fatal(err)
	}
	if l := layers(); len(l) != 0 {
		t.Fatalf("layers left after removing the pod: %v", l)
	}
}
