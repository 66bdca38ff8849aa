package server_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"

	"flotilla.dev/lib/testutil/registry"
	eventsv1 "flotilla.dev/proto/events/v1"
	imagev1 "flotilla.dev/proto/image/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// configDigest is the hex sha256 of the image config in the registry.
func configDigest(t *testing.T, reg *registry.Registry, ref string) string {
	t.Helper()
	out, err := reg.Skopeo(ctxT(t), "inspect", "--tls-verify=false", "--config", "--raw", "docker://"+reg.Local(ref))
	must(t, err)
	sum := sha256.Sum256(out)
	return hex.EncodeToString(sum[:])
}

func manifestDigest(t *testing.T, reg *registry.Registry, ref string) string {
	t.Helper()
	out, err := reg.Skopeo(ctxT(t), "inspect", "--tls-verify=false", "--format", "{{.Digest}}", "docker://"+reg.Local(ref))
	must(t, err)
	return strings.TrimSpace(string(out))
}

func TestImageIdentity(t *testing.T) {
	reg := startRegistry(t, registry.Options{Images: []string{"busybox"}})
	e := newEnv(t, reg, envOpts{})
	ctx := ctxT(t)

	id, err := e.pull(ctx, "busybox", nil)
	must(t, err)
	if want := configDigest(t, reg, "docker.io/library/busybox:latest"); id != want {
		t.Fatalf("image_ref %s, want the config digest %s", id, want)
	}
	// The same image from another registry and under another tag is one image.
	id2, err := e.pull(ctx, "registry.k8s.io/e2e-test-images/busybox:1.29-2", nil)
	must(t, err)
	id3, err := e.pull(ctx, "docker.io/library/busybox:1.36", nil)
	must(t, err)
	if id2 != id || id3 != id {
		t.Fatalf("ids %s %s %s differ", id, id2, id3)
	}
	// Pull by digest.
	dgst := manifestDigest(t, reg, "docker.io/library/busybox:latest")
	id4, err := e.pull(ctx, "busybox@"+dgst, nil)
	must(t, err)
	if id4 != id {
		t.Fatalf("pull by digest gave %s, want %s", id4, id)
	}

	img := e.status(ctx, id)
	if img == nil || img.Id != id {
		t.Fatalf("ImageStatus(%s) = %v", id, img)
	}
	wantTags := []string{"docker.io/library/busybox:1.36", "docker.io/library/busybox:latest", "registry.k8s.io/e2e-test-images/busybox:1.29-2"}
	if !slices.Equal(img.RepoTags, wantTags) {
		t.Errorf("RepoTags %v, want %v", img.RepoTags, wantTags)
	}
	for _, d := range []string{"docker.io/library/busybox@" + dgst, "registry.k8s.io/e2e-test-images/busybox@" + dgst} {
		if !slices.Contains(img.RepoDigests, d) {
			t.Errorf("RepoDigests %v lack %s", img.RepoDigests, d)
		}
	}
	if img.Size == 0 {
		t.Error("size is 0")
	}
	// Every way to name it finds it.
	for _, name := range []string{"busybox", "busybox:1.36", "docker.io/library/busybox", "busybox@" + dgst,
		"registry.k8s.io/e2e-test-images/busybox@" + dgst, id[:12], "sha256:" + id} {
		if got := e.status(ctx, name); got.GetId() != id {
			t.Errorf("ImageStatus(%q) = %v, want %s", name, got, id)
		}
	}
	if got := e.status(ctx, "busybox:nope"); got != nil {
		t.Errorf("ImageStatus of a missing tag = %v, want nil", got)
	}

	// Verbose status carries the image config.
	resp, err := e.images.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: "busybox"}, Verbose: true})
	must(t, err)
	var info struct {
		ImageSpec struct {
			Config struct{ Cmd []string } `json:"config"`
		} `json:"imageSpec"`
	}
	must(t, json.Unmarshal([]byte(resp.Info["info"]), &info))
	if !slices.Equal(info.ImageSpec.Config.Cmd, []string{"sh"}) {
		t.Errorf("verbose info config Cmd = %v, want [sh] (info %s)", info.ImageSpec.Config.Cmd, resp.Info["info"])
	}

	// List, with and without filter; the streaming list says the same.
	if l := e.list(ctx); len(l) != 1 || l[0].Id != id {
		t.Errorf("ListImages = %v", l)
	}
	lf, err := e.images.ListImages(ctx, &runtimeapi.ListImagesRequest{Filter: &runtimeapi.ImageFilter{Image: &runtimeapi.ImageSpec{Image: "busybox:1.36"}}})
	must(t, err)
	if len(lf.Images) != 1 {
		t.Errorf("filtered list = %v", lf.Images)
	}
	lf, err = e.images.ListImages(ctx, &runtimeapi.ListImagesRequest{Filter: &runtimeapi.ImageFilter{Image: &runtimeapi.ImageSpec{Image: "pause:3.10"}}})
	must(t, err)
	if len(lf.Images) != 0 {
		t.Errorf("filter on a missing image = %v", lf.Images)
	}
	st, err := e.images.StreamImages(ctx, &runtimeapi.StreamImagesRequest{})
	must(t, err)
	var streamed []*runtimeapi.Image
	for {
		r, err := st.Recv()
		if err != nil {
			break
		}
		streamed = append(streamed, r.Images...)
	}
	if len(streamed) != 1 || streamed[0].Id != id {
		t.Errorf("StreamImages = %v", streamed)
	}

	// ImageFsInfo reports bytes and inodes.
	fs, err := e.images.ImageFsInfo(ctx, &runtimeapi.ImageFsInfoRequest{})
	must(t, err)
	if len(fs.ImageFilesystems) != 1 || fs.ImageFilesystems[0].UsedBytes.GetValue() < img.Size/2 || fs.ImageFilesystems[0].InodesUsed.GetValue() == 0 || len(fs.ContainerFilesystems) != 1 {
		t.Errorf("ImageFsInfo = %v (image size %d)", fs, img.Size)
	}

	// Events: pulling and pulled, with the id.
	pulled := e.eventsOn(eventsv1.SubjectImagePulled)
	if len(pulled) != 4 || pulled[0].ImageId != id {
		t.Errorf("pulled events = %v", pulled)
	}
}

func TestRemoveImage(t *testing.T) {
	reg := startRegistry(t, registry.Options{Images: []string{"busybox", "test-image-tags"}})
	e := newEnv(t, reg, envOpts{})
	ctx := ctxT(t)

	// Removing what is not there succeeds.
	_, err := e.images.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: "busybox"}})
	must(t, err)

	var id string
	for _, tag := range []string{"1", "2", "3"} {
		id, err = e.pull(ctx, "gcr.io/k8s-staging-cri-tools/test-image-tags:"+tag, nil)
		must(t, err)
	}
	if img := e.status(ctx, id); len(img.GetRepoTags()) != 3 {
		t.Fatalf("three tags pulled: %v", img)
	}
	// Removing by one tag removes the image with all its tags, and its layers.
	_, err = e.images.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: "gcr.io/k8s-staging-cri-tools/test-image-tags:1"}})
	must(t, err)
	for _, name := range []string{id, "gcr.io/k8s-staging-cri-tools/test-image-tags:2"} {
		if img := e.status(ctx, name); img != nil {
			t.Fatalf("image still there as %s: %v", name, img)
		}
	}
	if l, i := e.stored(); l != 0 || i != 0 {
		t.Errorf("store holds %d layers, %d images after removal", l, i)
	}
	if ev := e.eventsOn(eventsv1.SubjectImageRemoved); len(ev) != 1 || ev[0].ImageId != id {
		t.Errorf("removed events = %v", ev)
	}

	// An image a container layer uses cannot be removed; the error names the container.
	bid, err := e.pull(ctx, "busybox", nil)
	must(t, err)
	_, err = e.rootfs.CreateRootfs(ctx, &imagev1.CreateRootfsRequest{ContainerId: "ctr-using-busybox", Image: "busybox"})
	must(t, err)
	_, err = e.images.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: bid}})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "ctr-using-busybox") {
		t.Fatalf("remove of an image in use: %v, want FailedPrecondition naming the container", err)
	}
	if e.status(ctx, bid) == nil {
		t.Fatal("refused removal removed the image")
	}
	_, err = e.rootfs.RemoveRootfs(ctx, &imagev1.RemoveRootfsRequest{ContainerId: "ctr-using-busybox"})
	must(t, err)
	_, err = e.images.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: "busybox"}})
	must(t, err)
	if e.status(ctx, bid) != nil {
		t.Fatal("image still there after its container went")
	}
}

func TestConcurrentPullsCoalesced(t *testing.T) {
	reg := startRegistry(t, registry.Options{Images: []string{"busybox", "pause-3.10", "pause-3.9", "test-image-1"}})
	e := newEnv(t, reg, envOpts{})
	ctx := ctxT(t)
	var wg sync.WaitGroup
	ids := make([]string, 8)
	errs := make([]error, 8)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ids[i], errs[i] = e.pull(ctx, "docker.io/library/busybox:latest", nil)
		}()
	}
	wg.Wait()
	for i := range ids {
		if errs[i] != nil || ids[i] != ids[0] {
			t.Fatalf("pull %d: %s %v (first %s)", i, ids[i], errs[i], ids[0])
		}
	}
	// A pull that started while another was running joined it: fewer
	// downloads than requests, and one image in the store.
	started := len(e.eventsOn(eventsv1.SubjectImagePulling))
	if started < 1 || started >= 8 {
		t.Errorf("%d downloads for 8 concurrent pulls of one image", started)
	}
	if _, imgs := e.stored(); imgs != 1 {
		t.Errorf("%d images stored", imgs)
	}
	// Different images pull side by side.
	refs := []string{"registry.k8s.io/pause:3.10", "registry.k8s.io/pause:3.9", "gcr.io/k8s-staging-cri-tools/test-image-1:latest"}
	got := make([]string, len(refs))
	for i, ref := range refs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = e.pull(ctx, ref, nil)
		}()
	}
	wg.Wait()
	for i := range refs {
		if errs[i] != nil || got[i] == "" || got[i] == ids[0] {
			t.Errorf("pull %s: %s %v", refs[i], got[i], errs[i])
		}
	}
	if got[0] == got[1] {
		t.Error("pause:3.10 and pause:3.9 are one image")
	}
	if _, imgs := e.stored(); imgs != 4 {
		t.Errorf("%d images stored, want 4", imgs)
	}
}

func TestBadInput(t *testing.T) {
	reg := startRegistry(t, registry.Options{Images: []string{"busybox"}})
	e := newEnv(t, reg, envOpts{})
	ctx := ctxT(t)
	for _, c := range []struct {
		image string
		code  codes.Code
	}{
		{"", codes.InvalidArgument},
		{"Busy Box:::", codes.InvalidArgument},
		{"busybox@sha256:123", codes.InvalidArgument},
		// The local registry itself (through a mirror the error would also
		// carry the unreachable upstream's: Unavailable).
		{reg.Addr + "/docker.io/library/nosuchimage:1", codes.NotFound},
		{reg.Addr + "/docker.io/library/busybox:nosuchtag", codes.NotFound},
		{"127.0.0.1:1/nothing/here:1", codes.Unavailable},
	} {
		_, err := e.pull(ctx, c.image, nil)
		if status.Code(err) != c.code {
			t.Errorf("pull %q: %v, want %s", c.image, err, c.code)
		}
		if c.image != "" && c.code != codes.InvalidArgument && !strings.Contains(err.Error(), c.image) {
			t.Errorf("pull %q: error %q does not name the image", c.image, err)
		}
	}
	_, err := e.images.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: "Busy Box:::"}})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("status of a malformed reference: %v", err)
	}
	_, err = e.images.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: "busybox"}, Auth: &runtimeapi.AuthConfig{Auth: "%%%"}})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("pull with a malformed auth: %v", err)
	}
	if l, i := e.stored(); l != 0 || i != 0 {
		t.Errorf("failed pulls left %d layers, %d images", l, i)
	}
	if f := e.eventsOn(eventsv1.SubjectImageFailed); len(f) == 0 || f[0].Message == "" {
		t.Errorf("failed events = %v", f)
	}
}

// Simultaneous RemoveImage calls for one image all succeed (critest's Image
// Consistency spec): whoever comes second finds it already gone.
func TestConcurrentRemoveImage(t *testing.T) {
	reg := startRegistry(t, registry.Options{Images: []string{"busybox"}})
	e := newEnv(t, reg, envOpts{})
	ctx := ctxT(t)
	for round := 0; round < 3; round++ {
		id, err := e.pull(ctx, "registry.k8s.io/e2e-test-images/busybox:1.29-2", nil)
		must(t, err)
		errs := make(chan error, 8)
		for i := 0; i < 8; i++ {
			go func() {
				_, err := e.images.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: id}})
				errs <- err
			}()
		}
		for i := 0; i < 8; i++ {
			if err := <-errs; err != nil {
				t.Fatalf("round %d: concurrent RemoveImage: %v", round, err)
			}
		}
		if img := e.status(ctx, id); img != nil {
			t.Fatalf("image still there: %v", img)
		}
	}
}
