package cri

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"time"

	flog "flotilla.dev/lib/log"
	imagev1 "flotilla.dev/proto/image/v1"
	netv1 "flotilla.dev/proto/net/v1"
	"flotilla.dev/sandboxd/internal/nsutil"
)

// reconcile removes what a crash in the middle of a create or remove left
// behind: pod directories, bundles and shims, rootfs layers and networks
// that no record owns. It runs in New, before anything is served: a create
// in flight would look like an orphan.
func (s *Service) reconcile(ctx context.Context) {
	s.mu.RLock()
	pods := map[string]bool{}
	for id := range s.pods {
		pods[id] = true
	}
	ctrs := map[string]bool{}
	for id := range s.ctrs {
		ctrs[id] = true
	}
	s.mu.RUnlock()
	log := s.Log

	podDir := filepath.Join(s.Config.RunRoot, "pods")
	ents, _ := os.ReadDir(podDir)
	for _, e := range ents {
		if pods[e.Name()] {
			continue
		}
		dir := filepath.Join(podDir, e.Name())
		_ = nsutil.Unmount(filepath.Join(dir, "shm"))
		_ = nsutil.Unpin(filepath.Join(dir, "ns", "ipcns"))
		_ = nsutil.Unpin(filepath.Join(dir, "ns", "utsns"))
		if s.Net != nil {
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			_, err := s.Net.TeardownPod(cctx, &netv1.TeardownPodRequest{PodId: e.Name()})
			cancel()
			if err != nil {
				log.Warn("tear down orphan pod network", flog.KeyPodID, e.Name(), flog.KeyError, err)
			}
		}
		if err := os.RemoveAll(dir); err == nil {
			log.Info("removed orphan pod", flog.KeyPodID, e.Name())
		}
	}

	ctrDir := filepath.Join(s.Config.RunRoot, "containers")
	ents, _ = os.ReadDir(ctrDir)
	for _, e := range ents {
		if ctrs[e.Name()] {
			continue
		}
		bundle := filepath.Join(ctrDir, e.Name())
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if sh, err := s.Shims.Connect(cctx, filepath.Join(bundle, "shim")); err == nil {
			_ = sh.Kill(cctx, syscall.SIGKILL, true)
			_, _ = sh.Wait(cctx)
			_ = sh.Delete(cctx)
			_ = sh.Shutdown(cctx)
			_ = sh.Close()
		}
		cancel()
		s.removeRootfs(ctx, e.Name())
		if err := os.RemoveAll(bundle); err == nil {
			log.Info("removed orphan container", flog.KeyContainerID, e.Name())
		}
	}

	if s.Rootfs != nil {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		list, err := s.Rootfs.ListRootfs(cctx, &imagev1.ListRootfsRequest{})
		cancel()
		if err != nil {
			log.Debug("list rootfs for reconciliation", flog.KeyError, err)
			return
		}
		for _, r := range list.GetRootfs() {
			owner := r.GetContainerId()
			if o := volumeOwner(owner); o != "" { // an image volume's layer
				owner = o
			}
			if !ctrs[owner] {
				s.removeRootfs(ctx, r.GetContainerId())
			}
		}
	}
}

func (s *Service) removeRootfs(ctx context.Context, id string) {
	if s.Rootfs == nil {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := s.Rootfs.RemoveRootfs(cctx, &imagev1.RemoveRootfsRequest{ContainerId: id}); err != nil {
		s.Log.Warn("remove orphan rootfs", flog.KeyContainerID, id, flog.KeyError, err)
	}
}
